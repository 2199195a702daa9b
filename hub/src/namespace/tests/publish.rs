//! Publish and delete: names, files and what they free.

use super::*;

#[test]
fn publish_creates_the_repository_and_replaces_a_name() {
    let mut ns = Ns::new();
    assert!(ns.list("alice").is_none());
    let first = ns.publish(100, "alice", "app", "a");
    assert!(first.freed.is_empty());
    assert_eq!(ns.names("alice"), [("app.flist".into(), Kind::Regular)]);
    assert_eq!(ns.updated("alice"), 100);

    let second = ns.publish(200, "alice", "app", "b");
    assert_eq!(
        second.freed,
        [file("a").sha256],
        "the old file is no longer named"
    );
    assert_eq!(ns.resolves_to("alice", "app"), Some(file("b").sha256));
    let info = ns.info("alice", "app").unwrap();
    assert_eq!(info.updated(), 200);
    assert_eq!(info.kind, Kind::Regular);
    assert_eq!(info.linktime, None);
}

#[test]
fn a_file_named_twice_is_freed_with_its_last_name() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "x", "same");
    ns.publish(2, "bob", "y", "same");
    let replaced = ns.publish(3, "alice", "x", "other");
    assert!(replaced.freed.is_empty(), "bob/y still names it");
    let deleted = ns
        .at(
            4,
            Change::Delete {
                repository: repo("bob"),
                name: flist("y"),
                or_taglink: taglink("y"),
            },
        )
        .unwrap();
    assert_eq!(deleted.freed, [file("same").sha256]);
}

#[test]
fn delete_removes_a_file_a_link_or_a_taglink_never_the_target() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "a");
    ns.link(2, "alice", "app", "latest").unwrap();
    let delete = |name: &str| Change::Delete {
        repository: repo("alice"),
        name: flist(name),
        or_taglink: taglink(name),
    };
    let applied = ns.at(3, delete("latest")).unwrap();
    assert!(applied.freed.is_empty());
    assert_eq!(ns.names("alice"), [("app.flist".into(), Kind::Regular)]);

    // 0-hub's fallback: a name without `.flist` that is a taglink.
    ns.at(
        4,
        Change::Tag {
            repository: repo("alice"),
            tag: tag("v1"),
            link: flist("app"),
            source_repository: repo("alice"),
            source: flist("app"),
        },
    )
    .unwrap();
    ns.at(
        5,
        Change::Crosstag {
            repository: repo("alice"),
            link: taglink("release"),
            tag_repository: repo("alice"),
            tag: tag("v1"),
        },
    )
    .unwrap();
    ns.at(6, delete("release")).unwrap();
    assert!(!ns.names("alice").iter().any(|(n, _)| n == "release"));
    assert_eq!(ns.updated("alice"), 6);

    not_found(ns.at(7, delete("release")), "source not found");
    not_found(
        ns.at(
            7,
            Change::Delete {
                repository: repo("nobody"),
                name: flist("x"),
                or_taglink: taglink("x"),
            },
        ),
        "user not found",
    );
}

#[test]
fn a_refused_change_changes_nothing() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "a");
    let before = ns.list("alice");
    let _ = ns.link(2, "alice", "missing", "latest");
    assert_eq!(ns.list("alice"), before);
    assert_eq!(ns.updated("alice"), 1);
}

#[test]
fn listings_are_in_0_hubs_on_disk_order() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "b", "b");
    ns.publish(2, "alice", "a", "a");
    ns.at(
        3,
        Change::Tag {
            repository: repo("alice"),
            tag: tag("v1"),
            link: flist("a"),
            source_repository: repo("alice"),
            source: flist("a"),
        },
    )
    .unwrap();
    // `.tag-v1` sorts before `a.flist`.
    assert_eq!(
        ns.names("alice"),
        [
            ("v1".into(), Kind::Tag),
            ("a.flist".into(), Kind::Regular),
            ("b.flist".into(), Kind::Regular),
        ]
    );
    assert_eq!(
        read::all_entries(&ns.conn).unwrap(),
        ["alice/.tag-v1", "alice/a.flist", "alice/b.flist"]
    );
}

#[test]
fn repositories_differ_by_more_than_case_or_form() {
    let mut ns = Ns::new();
    ns.publish(1, "Alice", "app", "a");
    for twin in ["alice", "ALICE", "\u{ff41}lice"] {
        let refused = ns.at(
            2,
            Change::Publish {
                repository: repo(twin),
                name: flist("app"),
                file: file("b"),
                facts: facts(),
                source: Source::Archive {
                    file: "b.tar".into(),
                },
                contents: Vec::new(),
            },
        );
        match refused {
            Err(Error::Conflict(m)) => assert!(m.contains("only by case"), "{m}"),
            other => panic!("{twin}: {other:?}"),
        }
    }
    // The repository itself is still written to.
    ns.publish(3, "Alice", "other", "c");
    assert_eq!(ns.names("Alice").len(), 2);
}
