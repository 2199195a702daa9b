//! Tar ingestion (plain, gzip or zstd, told from the bytes) through `converter::pack_tar`,
//! the pipeline and bounded reader the hub's uploads use, into a real directory store.
//! An accepted archive must give an flist that reads back with the same totals and only
//! valid paths; a refusal must be one of the input's typed errors, and leave no flist.

#![no_main]

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use chunkstore::{DirOptions, DirStore};
use converter::{Error, Limits, PackOptions, Progress};
use flist::{Flist, Walk};
use libfuzzer_sys::fuzz_target;

/// The runtime and scratch directory every run reuses; the store is made anew every
/// `STORE_RUNS` runs so that a long run does not fill the disk.
struct Scratch {
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    store: Mutex<(u32, Arc<DirStore>)>,
}

const STORE_RUNS: u32 = 5_000;

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch directory");
        let store = fresh_store(&dir.path().join("store"));
        Scratch {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .expect("runtime"),
            dir,
            store: Mutex::new((0, store)),
        }
    })
}

fn fresh_store(path: &std::path::Path) -> Arc<DirStore> {
    let _ = std::fs::remove_dir_all(path);
    Arc::new(DirStore::open(path, DirOptions { fsync: false }).expect("store"))
}

/// Far below the hub's defaults, so that a bomb is stopped (or breaches libFuzzer's
/// memory limits) within the run's time.
fn limits() -> Limits {
    Limits {
        max_entries: 2_000,
        max_total_size: 32 << 20,
        expansion_floor: 1 << 20,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    let store = {
        let mut slot = scratch.store.lock().expect("store lock");
        slot.0 += 1;
        if slot.0 % STORE_RUNS == 0 {
            slot.1 = fresh_store(&scratch.dir.path().join("store"));
        }
        slot.1.clone()
    };
    let out: PathBuf = scratch.dir.path().join("out.flist");
    let options = PackOptions {
        limits: limits(),
        workers: 1,
        ..PackOptions::default()
    };
    let result = scratch.runtime.block_on(converter::pack_tar(
        Cursor::new(data.to_vec()),
        "fuzz.tar".into(),
        out.clone(),
        store,
        options,
        Arc::new(Progress::default()),
    ));
    match result {
        Ok(summary) => {
            let flist = Flist::open(&out).expect("an accepted archive gives a readable flist");
            assert_eq!(flist.totals().expect("totals"), summary.totals);
            flist
                .walk(|path, _| {
                    flist::validate_path(path).expect("a recorded path is valid");
                    Ok(Walk::Continue)
                })
                .expect("walk");
            std::fs::remove_file(&out).expect("removing the flist");
        }
        Err(error) => {
            assert!(!out.exists(), "a refused archive leaves no flist: {error}");
            match error {
                Error::Input(_)
                | Error::Entry { .. }
                | Error::Escape { .. }
                | Error::BadLink { .. }
                | Error::HeaderRecordTooLarge { .. }
                | Error::TooManyEntries { .. }
                | Error::PathTooLong { .. }
                | Error::ContentTooLarge { .. }
                | Error::ExpansionTooLarge { .. }
                | Error::Flist(_) => {}
                other => panic!("not an input error: {other:?}"),
            }
        }
    }
});
