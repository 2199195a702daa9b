//! `flisthub extract` beside `tar -xf` of the same tree, both into tmpfs so that the disk is
//! out of the picture: the system's own libraries and shared data (`/usr/lib/x86_64-linux-gnu`
//! and `/usr/share`, about 1.3 GB in some 50,000 entries on a Debian machine) as many small
//! files, then one large file of incompressible random bytes.
//!
//! The tree is archived once with `tar -cf` and packed once from that archive into a dir
//! store; then each run extracts the archive with `tar -xf` and the flist with `flisthub
//! extract` (warm store, warm page cache), alternated, each into a fresh directory that is
//! removed before the next run. Wall time and the child's CPU seconds (user + sys, from
//! `wait4`) are reported as medians, with the ratio extract / tar.
//!
//! ```sh
//! cargo bench --bench extract
//! # quicker: 200 MB of the tree, a 512 MiB large file, 3 runs
//! FLISTHUB_BENCH_TREE_MB=200 FLISTHUB_BENCH_LARGE_MB=512 FLISTHUB_BENCH_RUNS=3 cargo bench --bench extract
//! ```
//!
//! `FLISTHUB_BENCH_TMPFS` names the tmpfs to extract into (`/dev/shm` by default); the
//! archives and the store are kept under the bench directory between runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{median, tree_bytes};

/// Where the tree is taken from: relative to `/usr`.
const SOURCES: &[&str] = &["lib/x86_64-linux-gnu", "share"];

fn main() {
    let work = common::work_dir().join("extract");
    std::fs::create_dir_all(&work).unwrap();
    let runs = common::runs();
    let tmpfs = std::env::var_os("FLISTHUB_BENCH_TMPFS").map_or("/dev/shm".into(), PathBuf::from);
    let tree_mb = env_mb("FLISTHUB_BENCH_TREE_MB", 0);
    let large_mb = env_mb("FLISTHUB_BENCH_LARGE_MB", 4096);
    println!(
        "runs per figure: {runs} (median shown), extracting into {}\n",
        tmpfs.display()
    );

    let archive = work.join(format!("usr-{tree_mb}.tar"));
    if !archive.exists() {
        archive_usr(&archive, tree_mb << 20);
    }
    let (tar, flisthub) = compare(&work, &tmpfs, &archive, "tree", runs);
    report("many small files", &tar, &flisthub);

    if large_mb > 0 {
        let archive = work.join(format!("random-{large_mb}.tar"));
        if !archive.exists() {
            random_archive(&work, &archive, large_mb << 20);
        }
        let (tar, flisthub) = compare(&work, &tmpfs, &archive, "large", runs);
        report("one large random file", &tar, &flisthub);
    }
}

fn env_mb(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One extraction's figures.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
}

struct Figures {
    runs: Vec<Run>,
    bytes: u64,
    entries: usize,
}

/// Packs `archive` (once) and extracts it with both tools, alternated.
fn compare(
    work: &Path,
    tmpfs: &Path,
    archive: &Path,
    name: &str,
    runs: usize,
) -> (Figures, Figures) {
    let stem = archive.file_stem().unwrap().to_str().unwrap();
    let store = work.join(format!("store-{stem}"));
    let flist = work.join(format!("{stem}.flist"));
    if !flist.exists() {
        let _ = std::fs::remove_dir_all(&store);
        let status = Command::new(env!("CARGO_BIN_EXE_flisthub"))
            .arg("-q")
            .arg("pack")
            .arg(archive)
            .arg("-o")
            .arg(&flist)
            .arg("--store")
            .arg(format!("dir://{}", store.display()))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pack failed");
    }
    let store_url = format!("dir://{}", store.display());
    let mut tar = Vec::new();
    let mut ours = Vec::new();
    let mut sizes = [(0, 0); 2];
    // One warm-up of each, not counted (page cache of the archive and the store).
    for run in 0..=runs {
        for (i, tool) in ["tar", "flisthub"].into_iter().enumerate() {
            let dest = tmpfs.join(format!("flisthub-bench-{name}-{tool}"));
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest).unwrap();
            let mut command = if tool == "tar" {
                let mut c = Command::new("tar");
                c.arg("-xf").arg(archive).arg("-C").arg(&dest);
                c
            } else {
                let mut c = Command::new(env!("CARGO_BIN_EXE_flisthub"));
                c.args(["-q", "extract"])
                    .arg(&flist)
                    .arg(&dest)
                    .args(["--store", &store_url]);
                c
            };
            let sample = timed(&mut command);
            if run == 0 {
                sizes[i] = (tree_bytes(&dest), count(&dest));
            } else if tool == "tar" {
                tar.push(sample);
            } else {
                ours.push(sample);
            }
            std::fs::remove_dir_all(&dest).unwrap();
        }
    }
    assert_eq!(
        sizes[0], sizes[1],
        "both must recreate the same bytes and entries"
    );
    let figures = |runs| Figures {
        runs,
        bytes: sizes[0].0,
        entries: sizes[0].1,
    };
    (figures(tar), figures(ours))
}

/// Runs a command to completion: its wall time and CPU seconds.
fn timed(command: &mut Command) -> Run {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::null()).spawn().expect("start");
    let (status, usage) = common::wait_with_usage(&mut child);
    let wall = started.elapsed();
    assert_eq!(status, 0, "{command:?} failed");
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Run {
        wall,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    }
}

fn count(root: &Path) -> usize {
    walkdir::WalkDir::new(root).into_iter().count()
}

fn report(what: &str, tar: &Figures, ours: &Figures) {
    let wall = |f: &Figures| median(f.runs.iter().map(|r| r.wall).collect());
    let cpu = |f: &Figures| median(f.runs.iter().map(|r| r.cpu).collect());
    let mbs = |f: &Figures| f.bytes as f64 / 1e6 / wall(f).as_secs_f64();
    println!(
        "{what}: {} entries, {:.2} GB",
        tar.entries,
        tar.bytes as f64 / 1e9
    );
    for (name, f) in [("tar -xf", tar), ("flisthub extract", ours)] {
        println!(
            "  {name:<17} wall {:6.2} s  cpu {:6.2} s  {:7.0} MB/s",
            wall(f).as_secs_f64(),
            cpu(f).as_secs_f64(),
            mbs(f)
        );
    }
    println!(
        "  extract / tar:    wall {:.2}x  cpu {:.2}x\n",
        wall(ours).as_secs_f64() / wall(tar).as_secs_f64(),
        cpu(ours).as_secs_f64() / cpu(tar).as_secs_f64()
    );
}

/// Archives the sources under `/usr`, all of them, or only the first entries (in walk
/// order) whose files add up to `limit` bytes when it is not 0.
fn archive_usr(archive: &Path, limit: u64) {
    let list = archive.with_extension("list");
    let mut names = Vec::new();
    let mut bytes = 0u64;
    'walk: for source in SOURCES {
        for entry in walkdir::WalkDir::new(Path::new("/usr").join(source)).sort_by_file_name() {
            let Ok(entry) = entry else { continue };
            if entry.file_type().is_file() {
                bytes += entry.metadata().map_or(0, |m| m.len());
                if limit > 0 && bytes > limit {
                    break 'walk;
                }
            }
            let relative = entry.path().strip_prefix("/usr").unwrap();
            names.extend_from_slice(relative.as_os_str().as_encoded_bytes());
            names.push(0);
        }
    }
    std::fs::write(&list, names).unwrap();
    println!(
        "archiving {} MB of /usr into {} ...",
        bytes >> 20,
        archive.display()
    );
    let status = Command::new("tar")
        .args(["-cf"])
        .arg(archive)
        .args(["-C", "/usr", "--no-recursion", "--null", "-T"])
        .arg(&list)
        .status()
        .unwrap();
    assert!(status.success(), "tar -cf failed");
}

/// An archive of one file of `size` random bytes.
fn random_archive(work: &Path, archive: &Path, size: u64) {
    let dir = work.join("random");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    println!("writing {} MiB of random bytes ...", size >> 20);
    {
        use std::io::Write;
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(dir.join("random.bin")).unwrap());
        let mut rng = common::Rng(0x5eed_0000_1a29_e001);
        let mut left = size;
        while left > 0 {
            let block = rng.bytes(left.min(1 << 20) as usize);
            file.write_all(&block).unwrap();
            left -= block.len() as u64;
        }
        file.flush().unwrap();
    }
    let status = Command::new("tar")
        .arg("-cf")
        .arg(archive)
        .arg("-C")
        .arg(&dir)
        .arg("random.bin")
        .status()
        .unwrap();
    assert!(status.success(), "tar -cf failed");
    std::fs::remove_dir_all(&dir).unwrap();
}
