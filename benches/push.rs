//! `flisthub push` of the pipeline bench's corpus to a hub on loopback, beside `flisthub
//! pack` of the same tree on this machine: a push into a hub that has none of the chunks
//! against a pack into a new store, and a push of everything again (the hub has every
//! chunk) against a pack into the store that already holds them. Client, hub and store
//! share this machine's CPUs, as they would not in use; the ratios are what the protocol
//! and the hub's checks cost on top of packing.
//!
//! ```sh
//! cargo bench --bench push
//! ```

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Hub, ensure_corpus, median, settle};

fn main() {
    let work = common::work_dir();
    let runs = common::runs();
    let corpus = work.join("corpus");
    let bytes = ensure_corpus(&corpus);
    let scratch = work.join("push-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    println!("{runs} runs per figure, median shown\n");

    let (mut cold_pack, mut warm_pack, mut cold_push, mut warm_push) =
        (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let store = format!("dir://{}", scratch.join(format!("store{run}")).display());
        let flist = scratch.join(format!("pack{run}.flist"));
        settle();
        cold_pack.push(timed(&mut flisthub(&[
            "pack",
            path(&corpus),
            "-o",
            path(&flist),
            "--store",
            &store,
        ])));
        warm_pack.push(timed(&mut flisthub(&[
            "pack",
            path(&corpus),
            "-o",
            path(&flist),
            "--store",
            &store,
        ])));
        settle();
        let hub = Hub::start(&scratch.join(format!("hub{run}")));
        let token = hub.tokens(&["bench".to_owned()]).remove(0);
        let push = |name: &str| {
            flisthub(&[
                "push",
                path(&corpus),
                "--hub",
                &hub.url,
                "--token",
                &token,
                "--name",
                name,
            ])
        };
        cold_push.push(timed(&mut push("corpus")));
        warm_push.push(timed(&mut push("again")));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "| corpus ({:.2} GiB) | median time | MB/s | vs pack |",
        bytes as f64 / (1u64 << 30) as f64
    );
    println!("|---|---|---|---|");
    for (label, pack, push) in [
        ("new chunks", median(cold_pack), median(cold_push)),
        (
            "every chunk already stored",
            median(warm_pack),
            median(warm_push),
        ),
    ] {
        println!(
            "| `pack`, {label} | {:.2} s | {:.0} | 1.00 |",
            pack.as_secs_f64(),
            mbs(pack)
        );
        println!(
            "| `push` to a hub on loopback, {label} | {:.2} s | {:.0} | {:.2} |",
            push.as_secs_f64(),
            mbs(push),
            pack.as_secs_f64() / push.as_secs_f64()
        );
    }
}

fn flisthub(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flisthub"));
    cmd.arg("-q").args(args).stdout(Stdio::null());
    cmd
}

fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let out = cmd.output().expect("run flisthub");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("bench paths are UTF-8")
}
