//! The 0-flist reader (`legacy::zero::ZeroFlist`: gzip, tar, SQLite, Cap'n Proto) on an
//! upload as it arrives, with tight limits so that a bomb is stopped within the run. An
//! accepted file is written again with `legacy::zero::write` and must read back the same
//! tree and metadata; a refusal is a `legacy::Error`, which the types already guarantee.

#![no_main]

use legacy::Limits;
use legacy::zero::{ZeroFlist, write};
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    Limits {
        archive_bytes: 4 << 20,
        expanded_bytes: 16 << 20,
        database_bytes: 16 << 20,
        members: 64,
        object_bytes: 1 << 20,
        entries: 10_000,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(flist) = ZeroFlist::from_reader(data, &limits()) else {
        return;
    };
    let (Ok(metadata), Ok(tree)) = (flist.metadata(), flist.tree()) else {
        return;
    };
    let _ = flist.block_ids();
    let mut copy = Vec::new();
    write(&tree, &metadata, &mut copy).expect("what the reader accepts, the writer takes");
    let again = ZeroFlist::from_reader(copy.as_slice(), &limits()).expect("the copy opens");
    assert_eq!(again.tree().expect("the copy's tree"), tree);
    assert_eq!(again.metadata().expect("the copy's metadata"), metadata);
});
