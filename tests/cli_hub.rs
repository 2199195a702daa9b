//! The commands a newcomer runs against a hub on the same machine, with the real binary and
//! a real hub: `ls` and `inspect` read an flist by its URL as `cat` and `extract` do; an
//! flist packed into the hub's own store says so, records where the hub serves its chunks,
//! and once published with `upload-flist` extracts on a machine without that store; an
//! flist whose chunks the hub lacks is refused with a pointer to `flisthub push`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::hub::*;
use common::*;

/// `flisthub <args>` with a private home, as a command run on the hub's machine with the
/// hub's data directory and public URL in its configuration (here: in the environment).
fn beside(hub: &HubServer, home: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("FLISTHUB_CONFIG")
        .env_remove("FLISTHUB_STORE")
        .env("FLISTHUB__SERVER__DATA_DIR", hub.data())
        .env("FLISTHUB__SERVER__PUBLIC_URL", &hub.url)
        .output()
        .unwrap()
}

fn upload_flist(hub: &HubServer, token: &str, file: &Path) -> (u16, serde_json::Value) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let bytes = std::fs::read(file).unwrap();
    body_json(hub.upload_to("/api/flist/me/upload-flist", token, name, bytes))
}

#[test]
fn a_pack_into_the_hubs_store_publishes_and_extracts_anywhere() {
    let hub = HubServer::start("");
    let token = hub.token("alice", &[]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/motd"), b"hello from the hub's store\n").unwrap();
    std::fs::write(src.join("big"), noise(300_000, 7)).unwrap();

    // Packed straight into the store of the running hub: the summary says so.
    let flist = w.join("app.flist");
    let store = format!("dir://{}/store", hub.data().display());
    let packed = ok(beside(
        &hub,
        w,
        args!["pack", src, "-o", flist, "--store", store],
    ));
    let summary = String::from_utf8_lossy(&packed.stderr);
    assert!(
        summary.contains("the running hub's store") && summary.contains(&hub.url),
        "{summary}"
    );
    let report = json(&ok(beside(
        &hub,
        w,
        args!["pack", src, "-o", flist, "--store", store, "--json"],
    )));
    assert!(
        report["hub"].as_str().unwrap().contains("running hub"),
        "{report}"
    );

    // Published as it is: every chunk is in the store already.
    let (status, body) = upload_flist(&hub, &token, &flist);
    assert_eq!(status, 200, "{body}");
    let url = format!("{}/alice/app.flist", hub.url);

    // `ls` and `inspect` take the URL as `cat` and `extract` do.
    let listing = text(ok(flisthub(w, args!["ls", url, "/etc"])));
    assert!(listing.contains("motd"), "{listing}");
    let inspect = json(&ok(flisthub(w, args!["inspect", url, "--json"])));
    assert_eq!(inspect["totals"]["files"], 2, "{inspect}");
    assert_eq!(
        inspect["metadata"]["routes"][0],
        format!("{}/api/v1/chunks", hub.url),
        "the flist says where the hub serves its chunks: {inspect}"
    );
    let shown = text(ok(flisthub(w, args!["inspect", url])));
    let value_columns: Vec<usize> = shown
        .lines()
        .map(|l| {
            let label = l.find(' ').unwrap();
            label + l[label..].find(|c: char| c != ' ').unwrap()
        })
        .collect();
    assert!(
        value_columns.windows(2).all(|w| w[0] == w[1]),
        "inspect's values are aligned: {shown}"
    );
    let cat = ok(flisthub(w, args!["cat", url, "etc/motd"])).stdout;
    assert_eq!(cat, b"hello from the hub's store\n");

    // Downloaded elsewhere (another home, no store of its own, no hub URL to go by): the
    // routes the flist records find the chunks.
    let elsewhere = w.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let copy = elsewhere.join("app.flist");
    std::fs::write(&copy, hub.get("/alice/app.flist").bytes().unwrap()).unwrap();
    let out = elsewhere.join("out");
    ok(flisthub(&elsewhere, args!["extract", copy, out]));
    assert_eq!(std::fs::read(out.join("big")).unwrap(), noise(300_000, 7));

    // Packed into another store: the hub lacks the chunks and says how to send them.
    let src2 = w.join("src2");
    std::fs::create_dir_all(&src2).unwrap();
    std::fs::write(src2.join("new"), noise(100_000, 8)).unwrap();
    let other = w.join("other.flist");
    let other_store = format!("dir://{}", w.join("other-store").display());
    let packed = ok(flisthub(
        w,
        args!["pack", src2, "-o", other, "--store", other_store],
    ));
    assert!(
        !String::from_utf8_lossy(&packed.stderr).contains("running hub"),
        "a store of no hub is not called one"
    );
    let (status, body) = upload_flist(&hub, &token, &other);
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("are missing") && message.contains("flisthub push"),
        "{message}"
    );

    // `push --help` says when --name is needed.
    let help = text(ok(flisthub(w, args!["push", "--help"])));
    assert!(help.contains("Required with SOURCE"), "{help}");
}

fn text(out: Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}
