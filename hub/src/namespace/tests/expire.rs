//! Retention's delete: only the file judged, only while nothing links to it, recorded with
//! its reason; and what retention reads of a repository.

use hubapi::changes::ChangeEvent;

use super::*;
use crate::namespace::retained;

fn expire(ns: &mut Ns, time: i64, name: &str, seed: &str) -> Result<Applied> {
    ns.at(
        time,
        Change::Expire {
            repository: repo("alice"),
            name: flist(name),
            sha256: file(seed).sha256,
            reason: "retention policy of alice (configured): keep 1".into(),
        },
    )
}

fn conflict(result: Result<Applied>, says: &str) {
    match refused(result) {
        Error::Conflict(m) => assert!(m.contains(says), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// `(name, linked)` of alice's flists, newest first.
fn held(ns: &Ns) -> Vec<(String, bool)> {
    retained::held(&ns.conn, "alice")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|h| (h.name, h.linked))
        .collect()
}

#[test]
fn expire_deletes_only_the_file_judged_and_only_unlinked() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "1");
    ns.publish(2, "alice", "other", "2");
    ns.publish(2, "alice", "x", "3");
    assert_eq!(
        held(&ns),
        [
            ("x.flist".into(), false),
            ("other.flist".into(), false),
            ("app.flist".into(), false)
        ],
        "newest first, ties by name, last first"
    );
    assert!(retained::held(&ns.conn, "nobody").unwrap().is_none());

    // A symlink of the repository, and a tag of another one, keep what they name.
    ns.link(3, "alice", "app", "latest").unwrap();
    ns.at(
        4,
        Change::Tag {
            repository: repo("bob"),
            tag: tag("stable"),
            link: flist("o"),
            source_repository: repo("alice"),
            source: flist("other"),
        },
    )
    .unwrap();
    assert_eq!(
        held(&ns),
        [
            ("x.flist".into(), false),
            ("other.flist".into(), true),
            ("app.flist".into(), true)
        ]
    );
    conflict(expire(&mut ns, 5, "app", "1"), "is linked");
    conflict(expire(&mut ns, 5, "other", "2"), "is linked");
    // Re-published since it was judged: kept.
    conflict(expire(&mut ns, 5, "x", "9"), "changed since");
    // A symlink is never an flist retention deletes.
    conflict(
        ns.at(
            5,
            Change::Expire {
                repository: repo("alice"),
                name: flist("latest"),
                sha256: file("1").sha256,
                reason: "r".into(),
            },
        ),
        "changed since",
    );

    let applied = expire(&mut ns, 6, "x", "3").unwrap();
    assert_eq!(applied.freed, [file("3").sha256]);
    let (_, event) = applied.recorded.unwrap();
    assert_eq!(
        event,
        ChangeEvent::Delete {
            repository: "alice".into(),
            name: "x.flist".into(),
            reason: Some("retention policy of alice (configured): keep 1".into()),
        }
    );
    assert_eq!(held(&ns).len(), 2);
    conflict(expire(&mut ns, 7, "x", "3"), "changed since");
    assert_eq!(ns.resolves_to("alice", "latest"), Some(file("1").sha256));
}
