//! The 0-db protocol's request parser (`chunkstore::resp`, what the hub's 0-db gateway
//! reads from every connection), fed in pieces (the first byte picks the piece size) as a
//! socket delivers them. Every request taken must parse back the same when written out
//! canonically, the buffer may only grow past the request bound when a whole request said
//! it would, and a refusal is a `Malformed`, which the types already guarantee.

#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use chunkstore::resp::{MAX_ARGS, Parser};
use libfuzzer_sys::fuzz_target;

/// Limits the size of the test, not the behaviour: the gateway's are 8 MiB and 16 MiB.
const MAX_ARG: usize = 4096;
const MAX_REQUEST: usize = 16384;

fn canonical(args: &[Bytes]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let parser = Parser::new(MAX_ARG, MAX_REQUEST);
    let mut buf = BytesMut::new();
    let mut need = 0;
    for part in input.chunks(piece) {
        buf.extend_from_slice(part);
        loop {
            let before = buf.len();
            match parser.next(&mut buf, &mut need) {
                Ok(Some(args)) => {
                    assert!(args.len() <= MAX_ARGS);
                    assert!(args.iter().all(|a| a.len() <= MAX_ARG));
                    assert!(before - buf.len() > args.iter().map(Bytes::len).sum::<usize>());
                    let mut again = canonical(&args);
                    let mut again_need = 0;
                    let reparsed = parser.next(&mut again, &mut again_need);
                    assert_eq!(reparsed, Ok(Some(args)), "the canonical form parses back");
                    assert!(again.is_empty());
                }
                Ok(None) => {
                    // What the parser asks to reserve stays within the request bound
                    // (headers included) and its last line end.
                    assert!(need <= MAX_REQUEST + 2, "need {need}");
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
