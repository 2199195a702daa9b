//! The committed Rust code of `schema/flist.capnp` (`src/zero/flist_capnp.rs`) must be what
//! capnpc generates from it today, so that building flisthub never needs the `capnp`
//! compiler. `schema/regenerate.sh` rewrites it (this test with
//! `LEGACY_REGENERATE_SCHEMA=1`).

use std::path::Path;
use std::process::Command;

const GENERATED: &str = "src/zero/flist_capnp.rs";

#[test]
fn committed_generated_code_is_current() {
    let has_capnp = Command::new("capnp")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_capnp {
        eprintln!("SKIP: the capnp compiler is not installed (Debian package capnproto)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    capnpc::CompilerCommand::new()
        .src_prefix("schema")
        .file("schema/flist.capnp")
        .output_path(out.path())
        .default_parent_module(vec!["zero".into()])
        .run()
        .unwrap();
    let fresh = std::fs::read_to_string(out.path().join("flist_capnp.rs")).unwrap();
    if std::env::var_os("LEGACY_REGENERATE_SCHEMA").is_some() {
        std::fs::write(GENERATED, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(Path::new(GENERATED)).unwrap();
    assert!(
        without_compiler_version(&committed) == without_compiler_version(&fresh),
        "{GENERATED} is stale: run legacy/schema/regenerate.sh and commit the result"
    );
}

/// The generated code less the header line naming the `capnp` binary's version, which
/// differs between machines without changing the code.
fn without_compiler_version(code: &str) -> Vec<&str> {
    code.lines()
        .filter(|l| !l.starts_with("// capnp binary version:"))
        .collect()
}
