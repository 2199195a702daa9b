//! Rename (no silent overwrite, no loops) and promote (a copy, published now).

use super::*;

fn rename(source: &str, destination: &str, force: bool) -> Change {
    Change::Rename {
        repository: repo("alice"),
        source: flist(source),
        destination: flist(destination),
        force,
    }
}

fn promote(repository: &str, source: (&str, &str), local: &str) -> Change {
    Change::Promote {
        repository: repo(repository),
        source_repository: repo(source.0),
        source: flist(source.1),
        local: flist(local),
    }
}

#[test]
fn rename_moves_a_name_and_refuses_to_overwrite_unless_forced() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "a", "a");
    ns.publish(2, "alice", "b", "b");
    match refused(ns.at(3, rename("a", "b", false))) {
        Error::Conflict(m) => assert!(m.contains("already exists"), "{m}"),
        other => panic!("{other:?}"),
    }
    let applied = ns.at(4, rename("a", "b", true)).unwrap();
    assert_eq!(applied.freed, [file("b").sha256]);
    assert_eq!(ns.resolves_to("alice", "b"), Some(file("a").sha256));
    assert!(ns.resolves_to("alice", "a").is_none());
    assert_eq!(ns.updated("alice"), 4);
    ns.at(5, rename("b", "c", false)).unwrap();
    not_found(ns.at(6, rename("b", "d", false)), "source not found");
}

#[test]
fn renaming_a_name_to_itself_changes_and_records_nothing() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "a", "a");
    let applied = ns.at(2, rename("a", "a", false)).unwrap();
    assert_eq!(applied.recorded, None);
    assert_eq!(ns.updated("alice"), 1);
}

#[test]
fn a_link_cannot_be_renamed_onto_what_it_points_at() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "a");
    ns.link(2, "alice", "app", "latest").unwrap();
    match refused(ns.at(3, rename("latest", "app", true))) {
        Error::BadRequest(m) => assert!(m.contains("point at itself"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ns.resolves_to("alice", "app"),
        Some(file("a").sha256),
        "unchanged"
    );
}

#[test]
fn promote_copies_what_the_source_resolves_to_and_replaces_anything() {
    let mut ns = Ns::new();
    ns.publish(10, "builds", "app", "a");
    ns.link(11, "builds", "app", "latest").unwrap();
    ns.publish(12, "alice", "mine", "m");
    ns.link(13, "alice", "mine", "stable").unwrap();
    // Over a link of the destination; through a link of the source.
    let applied = ns
        .at(20, promote("alice", ("builds", "latest"), "stable"))
        .unwrap();
    assert!(applied.freed.is_empty());
    let info = ns.info("alice", "stable").unwrap();
    assert_eq!(info.kind, Kind::Regular, "a copy, not a link");
    assert_eq!(info.updated(), 20, "published now");
    assert_eq!(ns.resolves_to("alice", "stable"), Some(file("a").sha256));
    // Over a regular flist, whose file is freed.
    let applied = ns
        .at(21, promote("alice", ("builds", "app"), "mine"))
        .unwrap();
    assert_eq!(applied.freed, [file("m").sha256]);
    // Into a repository that does not exist yet.
    ns.at(22, promote("carol", ("builds", "app"), "app"))
        .unwrap();
    not_found(
        ns.at(23, promote("alice", ("nobody", "app"), "x")),
        "user not found",
    );
    not_found(
        ns.at(23, promote("alice", ("builds", "gone"), "x")),
        "source not found",
    );
}
