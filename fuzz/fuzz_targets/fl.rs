//! The rfs `fl` reader (`legacy::fl::FlFile`) on a file from disk: SQLite's hardening and
//! the schema check, then tags, routes and the tree. An accepted file is written again
//! with `legacy::fl::write` and must read back the same; a refusal is a `legacy::Error`,
//! which the types already guarantee.

#![no_main]

use legacy::Limits;
use legacy::fl::{FlFile, write};
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    Limits {
        database_bytes: 16 << 20,
        entries: 10_000,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("in.fl");
    std::fs::write(&path, data).expect("writing the input");
    let Ok(fl) = FlFile::open_with(&path, &limits()) else {
        return;
    };
    let (Ok(tags), Ok(routes), Ok(tree)) = (fl.tags(), fl.routes(), fl.tree()) else {
        return;
    };
    let _ = fl.block_ids();
    let copy = dir.path().join("copy.fl");
    let out = std::fs::File::create(&copy).expect("creating the copy");
    write(&tree, &tags, &routes, out).expect("what the reader accepts, the writer takes");
    let again = FlFile::open_with(&copy, &limits()).expect("the copy opens");
    assert_eq!(again.tree().expect("the copy's tree"), tree);
    assert_eq!(again.tags().expect("the copy's tags"), tags);
    assert_eq!(again.routes().expect("the copy's routes"), routes);
});
