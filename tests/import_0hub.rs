//! `flisthub import-0hub` of a 0-hub public directory made of real zflist and rfs files
//! whose blocks sit in a real 0-db: imported beside a running hub, every public route then
//! answers as 0-hub answered for the same tree (reference section 3.3 and appendix B,
//! computed here from the file times as 0-hub computed them), downloads are the files byte
//! for byte, the blocks are in the hub's store, a second run changes nothing, and runs
//! killed at random points followed by a last run end in the same hub.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hub::*;
use serde_json::{Value, json};
use testkit::peers::{Zdb, Zflist, rfs_pack};

const T0: i64 = 1_600_000_000;
const CONFIG: &str = "[server]\nofficial-repositories = [\"alice\"]\n";
/// Entries of the tree flisthub cannot hold, each skipped with its reason.
const SKIPPED: &[&str] = &[
    "users/alice/.keep",
    "users/alice/bad.flist",
    "users/alice/dangling.flist",
    "users/alice/lost",
    "users/alice/.tag-v1/gone.flist",
    "users/alice/notes",
    "users/api",
];

/// The tree: its `users/` directory and the old 0-db holding its blocks.
struct Fixture {
    dir: tempfile::TempDir,
    zdb: Zdb,
}

impl Fixture {
    fn users(&self) -> PathBuf {
        self.dir.path().join("public/users")
    }
}

fn fixture() -> Option<Fixture> {
    let zdb = Zdb::start()?;
    let zflist = Zflist::new(Some(&zdb))?;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("public/users");
    for repo in ["alice", "bob", "api"] {
        std::fs::create_dir_all(users.join(repo)).unwrap();
    }
    let zero = |seed: u8, out: &Path| {
        let src = dir.path().join(format!("src-{seed}"));
        source(&src, seed);
        zflist.ok(&["init"]);
        zflist.ok(&["putdir", &src.to_string_lossy(), "/"]);
        zflist.ok(&["metadata", "backend", "--host", "hub.tld", "--port", "9900"]);
        zflist.ok(&["commit", &out.to_string_lossy()]);
        zflist.ok(&["close"]);
    };
    zero(1, &users.join("alice/a.flist"));
    zero(2, &users.join("alice/b.flist"));
    zero(3, &users.join("bob/c.flist"));
    std::fs::copy(users.join("alice/a.flist"), users.join("api/x.flist")).unwrap();
    let src = dir.path().join("src-fl");
    source(&src, 4);
    let store = format!("zdb://127.0.0.1:{}/default", zdb.port());
    let packed = rfs_pack(&users.join("alice/app.fl"), &store, &src)?;
    assert!(
        packed.status.success(),
        "{}",
        String::from_utf8_lossy(&packed.stderr)
    );
    std::fs::write(users.join("alice/.keep"), b"").unwrap();
    std::fs::write(users.join("alice/bad.flist"), b"not an flist at all").unwrap();
    std::fs::create_dir(users.join("alice/notes")).unwrap();
    let alice = users.join("alice");
    let link = |target: &str, name: &str, time: i64| {
        let path = alice.join(name);
        std::os::unix::fs::symlink(target, &path).unwrap();
        set_time(&path, time);
    };
    std::fs::create_dir(alice.join(".tag-v1")).unwrap();
    link("../../alice/a.flist", ".tag-v1/a.flist", T0 + 50);
    link("../../bob/c.flist", ".tag-v1/c.flist", T0 + 51);
    link("../../bob/none.flist", ".tag-v1/gone.flist", T0 + 52);
    link("a.flist", "latest.flist", T0 + 40);
    link("app.fl", "app-latest.fl", T0 + 41);
    link("../bob/c.flist", "cross.flist", T0 + 42);
    link("gone.flist", "dangling.flist", T0 + 43);
    link("../alice/.tag-v1", "mytag", T0 + 60);
    link("../bob/.tag-none", "lost", T0 + 61);
    std::os::unix::fs::symlink("../alice/latest.flist", users.join("bob/chain.flist")).unwrap();
    set_time(&users.join("bob/chain.flist"), T0 + 70);
    for (path, time) in [
        ("alice/a.flist", T0 + 10),
        ("alice/b.flist", T0 + 20),
        ("alice/app.fl", T0 + 30),
        ("bob/c.flist", T0 + 5),
        ("alice/.tag-v1", T0 + 800),
        ("bob", T0 + 700),
        ("alice", T0 + 900),
    ] {
        set_time(&users.join(path), time);
    }
    Some(Fixture { dir, zdb })
}

/// A small tree of its own per seed: a file over one 512 KiB block, a small one, a link.
fn source(dir: &Path, seed: u8) {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let big: Vec<u8> = (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    std::fs::write(dir.join("big.bin"), big).unwrap();
    std::fs::write(dir.join("etc/hostname"), format!("host-{seed}\n")).unwrap();
    std::os::unix::fs::symlink("etc/hostname", dir.join("name")).unwrap();
}

fn set_time(path: &Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let time = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = [time, time];
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn import(hub: &HubServer, users: &Path, zdb: &Zdb) -> String {
    let from = format!("zdb://127.0.0.1:{}", zdb.port());
    let out = hub
        .cli(&[
            "import-0hub",
            &users.to_string_lossy(),
            "--blocks-from",
            &from,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "import-0hub: {stderr}");
    stderr
}

// ----- 0-hub's answers, computed from the tree as 0-hub computed them -----

fn kb(bytes: u64) -> String {
    format!("{:.2} KB", bytes as f64 / 1024.0)
}

fn skipped(users: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(users.parent().unwrap()).unwrap();
    SKIPPED.iter().any(|s| Path::new(s) == relative)
}

fn cleaned(text: &str) -> String {
    text.replace("../", "").replace(".tag-", "tags/")
}

fn sorted_dir(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.path())
        })
        .collect();
    names.sort();
    names
}

/// A listing entry of `/api/flist/<repo>` or of a tag, as 0-hub made it.
fn zero_hub_listed(name: &str, path: &Path) -> Option<Value> {
    let own = std::fs::symlink_metadata(path).unwrap();
    if own.is_dir() {
        let tag = name.strip_prefix(".tag-")?;
        return Some(json!({"name": tag, "size": "0 KB", "updated": own.mtime(), "type": "tag"}));
    }
    if !own.file_type().is_symlink() {
        return Some(
            json!({"name": name, "size": kb(own.len()), "updated": own.mtime(), "type": "regular"}),
        );
    }
    let text = std::fs::read_link(path)
        .unwrap()
        .into_os_string()
        .into_string()
        .unwrap();
    let target = std::fs::metadata(path).unwrap();
    let taglink = text.contains("/.tag-");
    Some(json!({
        "name": name,
        "size": if taglink { "4.00 KB".to_owned() } else { kb(target.len()) },
        "updated": target.mtime(),
        "linktime": own.mtime(),
        "type": if taglink { "taglink" } else { "symlink" },
        "target": cleaned(&text),
    }))
}

fn md5_of(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// Every public route the tree's entries answer, checked against 0-hub's answers.
fn check_routes(hub: &HubServer, users: &Path) {
    let mut repositories = Vec::new();
    let mut all = BTreeSet::new();
    for (repo, dir) in sorted_dir(users) {
        if skipped(users, &dir) {
            let status = hub.get(&format!("/api/flist/{repo}")).status().as_u16();
            assert_ne!(status, 200, "{repo} is not imported");
            continue;
        }
        let updated = std::fs::symlink_metadata(&dir).unwrap().mtime();
        repositories.push(json!({"name": repo, "official": repo == "alice", "updated": updated}));
        let mut listing = Vec::new();
        for (name, path) in sorted_dir(&dir) {
            if skipped(users, &path) {
                continue;
            }
            all.insert(format!("{repo}/{name}"));
            let Some(listed) = zero_hub_listed(&name, &path) else {
                continue;
            };
            listing.push(listed.clone());
            match listed["type"].as_str().unwrap() {
                "tag" => check_tag(hub, users, &repo, &name, &path),
                "taglink" => {
                    let (status, body) =
                        body_json(hub.get(&format!("/api/flist/{repo}/{name}/taglink")));
                    assert_eq!((status, body), (200, json!({"target": listed["target"]})));
                }
                _ => check_flist(hub, &repo, &name, &path),
            }
        }
        let (status, answer) = body_json(hub.get(&format!("/api/flist/{repo}")));
        assert_eq!(status, 200);
        assert_eq!(answer, Value::Array(listing.clone()), "/api/flist/{repo}");
        for (got, want) in answer.as_array().unwrap().iter().zip(&listing) {
            assert_eq!(keys(got), keys(want), "field order of {got}");
        }
    }
    let (_, answer) = body_json(hub.get("/api/repositories"));
    assert_eq!(answer, Value::Array(repositories));
    let (_, answer) = body_json(hub.get("/api/flist"));
    let listed: BTreeSet<String> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, all);
}

fn check_tag(hub: &HubServer, users: &Path, repo: &str, name: &str, dir: &Path) {
    let tag = name.strip_prefix(".tag-").unwrap();
    let members: Vec<Value> = sorted_dir(dir)
        .into_iter()
        .filter(|(_, path)| !skipped(users, path))
        .map(|(member, path)| zero_hub_listed(&member, &path).unwrap())
        .collect();
    assert!(!members.is_empty());
    let (status, answer) = body_json(hub.get(&format!("/api/flist/{repo}/tags/{tag}")));
    assert_eq!((status, answer), (200, Value::Array(members)));
}

/// `light`, the download and its `.md5` of a regular flist or a symlink.
fn check_flist(hub: &HubServer, repo: &str, name: &str, path: &Path) {
    let own = std::fs::symlink_metadata(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let target = std::fs::metadata(path).unwrap();
    let mut light = json!({
        "name": name, "size": bytes.len(), "updated": target.mtime(),
        "type": if own.is_file() { "regular" } else { "symlink" }, "md5": md5_of(&bytes),
    });
    if !own.is_file() {
        let text = std::fs::read_link(path).unwrap();
        light["linktime"] = json!(own.mtime());
        light["target"] = json!(text.to_string_lossy());
    }
    let (stem, suffix) = name.rsplit_once('.').unwrap();
    let (status, mut answer) = body_json(hub.get(&format!("/api/flist/{repo}/{stem}/light")));
    // flisthub adds the file's sha256 after 0-hub's fields.
    let sha256 = answer.as_object_mut().unwrap().shift_remove("sha256");
    assert_eq!(sha256.unwrap().as_str().unwrap().len(), 64);
    assert_eq!((status, &answer), (200, &light), "{repo}/{name}");
    assert_eq!(keys(&answer), keys(&light));
    let served = hub.get(&format!("/{repo}/{name}")).bytes().unwrap();
    assert!(
        served[..] == bytes[..],
        "{repo}/{name} is served byte for byte"
    );
    let md5 = hub.get(&format!("/{repo}/{name}.md5")).text().unwrap();
    assert_eq!(md5, format!("{}\n", md5_of(&bytes)));
    if suffix == "flist" {
        // zflist's own backend metadata is kept: nodes read blocks where it says.
        let (_, metadata) = body_json(hub.get(&format!("/api/flist/{repo}/{stem}/metadata")));
        assert_eq!(metadata["backend"]["host"], "hub.tld", "{metadata}");
        assert_eq!(metadata["backend"]["port"], 9900);
    }
}

/// Every block the imported files name is in the hub's store, as the old 0-db has it.
fn check_blocks(hub: &HubServer, fixture: &Fixture) -> usize {
    let mut ids: Vec<chunkstore::BlockId> = Vec::new();
    for file in ["alice/a.flist", "alice/b.flist", "bob/c.flist"] {
        let flist = legacy::zero::ZeroFlist::open(&fixture.users().join(file)).unwrap();
        ids.extend(
            flist
                .block_ids()
                .unwrap()
                .into_iter()
                .map(chunkstore::BlockId::from),
        );
    }
    let fl = legacy::fl::FlFile::open(&fixture.users().join("alice/app.fl")).unwrap();
    ids.extend(
        fl.block_ids()
            .unwrap()
            .into_iter()
            .map(chunkstore::BlockId::from),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(chunkstore::open(&format!(
            "dir://{}",
            hub.data().join("store").display()
        )))
        .unwrap();
    let found = runtime.block_on(store.get_blocks(&ids)).unwrap();
    for (id, block) in ids.iter().zip(found) {
        let block = block.unwrap_or_else(|| panic!("block {id} is not in the hub's store"));
        assert_eq!(fixture.zdb.get(id.as_bytes()).as_deref(), Some(&block[..]));
    }
    ids.len()
}

/// Every public answer about the tree, for comparing two hubs or two moments.
fn snapshot(hub: &HubServer) -> Vec<(String, String)> {
    let mut paths = vec![
        "/api/repositories".to_owned(),
        "/api/flist".to_owned(),
        "/api/fileslist".to_owned(),
        "/api/v1/changes?limit=1000".to_owned(),
        "/api/flist/alice/tags/v1".to_owned(),
    ];
    for name in ["a", "b", "app", "latest", "app-latest", "cross"] {
        paths.push(format!("/api/flist/alice/{name}/light"));
    }
    paths.push("/api/flist/bob/chain/light".to_owned());
    paths
        .into_iter()
        .map(|p| {
            let body = hub.get(&p).text().unwrap();
            (p, body)
        })
        .collect()
}

#[test]
fn a_zero_hub_tree_imported_answers_as_zero_hub_did() {
    let Some(fixture) = fixture() else {
        return;
    };
    let users = fixture.users();
    let hub = HubServer::start(CONFIG);
    let started = Instant::now();
    // The public directory, not users/: both are taken.
    let report = import(&hub, &fixture.dir.path().join("public"), &fixture.zdb);
    let took = started.elapsed();
    for path in SKIPPED {
        let path = fixture.dir.path().join("public").join(path);
        assert!(
            report.contains(&format!("{}:", path.display())),
            "{path:?} skipped: {report}"
        );
    }
    assert!(report.contains("reserved"), "{report}");
    assert!(report.contains("dangling"), "{report}");
    check_routes(&hub, &users);
    let blocks = check_blocks(&hub, &fixture);
    assert!(blocks >= 8, "{blocks} blocks");
    let before = snapshot(&hub);

    let again = import(&hub, &users, &fixture.zdb);
    assert!(again.contains("(nothing changed)"), "{again}");
    assert!(again.contains("0 copied"), "{again}");
    assert_eq!(snapshot(&hub), before, "a second run changes nothing");

    // A file re-published in the tree (a new time) shows at once on the running hub, in
    // answers it had kept: its own and those of the links to it.
    set_time(&users.join("alice/a.flist"), T0 + 11);
    let changed = import(&hub, &users, &fixture.zdb);
    assert!(changed.contains("flists:      1 added"), "{changed}");
    for name in ["a", "latest"] {
        let (_, light) = body_json(hub.get(&format!("/api/flist/alice/{name}/light")));
        assert_eq!(light["updated"], T0 + 11, "{name}: {light}");
    }
    check_routes(&hub, &users);
    set_time(&users.join("alice/a.flist"), T0 + 10);
    import(&hub, &users, &fixture.zdb);

    // Killed at random points (within the first third of the time a whole run took: a run
    // killed late may have finished, and the runs after it have little left to do), then
    // run to its end.
    let other = HubServer::start(CONFIG);
    let from = format!("zdb://127.0.0.1:{}", fixture.zdb.port());
    let limit = (took.as_millis() / 3).max(10) as u64;
    let mut killed_running = 0;
    for _ in 0..10 {
        let mut child = other
            .cli(&[
                "import-0hub",
                &users.to_string_lossy(),
                "--blocks-from",
                &from,
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rand::random_range(0..limit)));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(killed_running > 0, "no run was killed while it worked");
    import(&other, &users, &fixture.zdb);
    check_routes(&other, &users);
    check_blocks(&other, &fixture);
    assert_eq!(
        snapshot(&other),
        before,
        "killed runs and a last one end equal"
    );
}
