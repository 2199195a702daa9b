//! Symlinks and crosslinks: 0-hub's rules (they must resolve when made, may replace a link
//! but never a regular flist) and the loops 0-hub could make.

use super::*;
use crate::namespace::views::Target;

fn crosslink(
    ns: &mut Ns,
    time: i64,
    repository: &str,
    link: &str,
    source: (&str, &str),
) -> Result<Applied> {
    ns.at(
        time,
        Change::Crosslink {
            repository: repo(repository),
            link: flist(link),
            source_repository: repo(source.0),
            source: flist(source.1),
        },
    )
}

#[test]
fn a_link_shows_its_targets_time_and_its_own() {
    let mut ns = Ns::new();
    ns.publish(100, "alice", "app", "a");
    ns.link(200, "alice", "app", "latest").unwrap();
    let info = ns.info("alice", "latest").unwrap();
    assert_eq!(info.kind, Kind::Symlink);
    assert_eq!(info.updated(), 100, "updated is the target's");
    assert_eq!(info.linktime, Some(200));
    assert_eq!(info.target, Some(Target::Local("app.flist".into())));
    assert_eq!(ns.resolves_to("alice", "latest"), Some(file("a").sha256));
    let listed = ns.list("alice").unwrap();
    let latest = listed.iter().find(|l| l.name == "latest.flist").unwrap();
    assert_eq!(
        (latest.updated, latest.linktime, latest.size),
        (100, Some(200), Some(100))
    );
    assert_eq!(latest.target.as_ref().unwrap().cleaned(), "app.flist");
    assert_eq!(latest.target.as_ref().unwrap().raw(), "app.flist");
}

#[test]
fn a_link_follows_its_target_when_republished_and_dangles_when_it_goes() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "a");
    ns.link(2, "alice", "app", "latest").unwrap();
    ns.publish(3, "alice", "app", "b");
    assert_eq!(ns.resolves_to("alice", "latest"), Some(file("b").sha256));
    ns.at(
        4,
        Change::Delete {
            repository: repo("alice"),
            name: flist("app"),
            or_taglink: taglink("app"),
        },
    )
    .unwrap();
    let info = ns.info("alice", "latest").unwrap();
    assert!(info.resolved.is_none(), "dangling");
    assert_eq!(info.updated(), 2, "a dangling link shows its own time");
}

#[test]
fn a_link_must_resolve_and_never_replaces_a_regular_flist() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "a");
    ns.publish(1, "alice", "other", "o");
    not_found(ns.link(2, "alice", "missing", "latest"), "source not found");
    not_found(ns.link(2, "nobody", "app", "latest"), "user not found");
    link_conflict(
        ns.link(2, "alice", "app", "other"),
        "link destination is already a file",
    );
    link_conflict(
        ns.link(2, "alice", "app", "app"),
        "link destination is already a file",
    );
    // A link replaces a link.
    ns.link(3, "alice", "app", "latest").unwrap();
    ns.link(4, "alice", "other", "latest").unwrap();
    assert_eq!(ns.resolves_to("alice", "latest"), Some(file("o").sha256));
}

#[test]
fn links_may_not_loop() {
    let mut ns = Ns::new();
    ns.publish(1, "alice", "app", "a");
    ns.link(2, "alice", "app", "one").unwrap();
    ns.link(3, "alice", "one", "two").unwrap();
    // `one` pointing at `two`, which points at `one`.
    match refused(ns.link(4, "alice", "two", "one")) {
        Error::BadRequest(m) => assert!(m.contains("point at itself"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ns.resolves_to("alice", "two"), Some(file("a").sha256));
}

#[test]
fn crosslinks_name_another_repository() {
    let mut ns = Ns::new();
    ns.publish(10, "bob", "app", "a");
    // The repository of the link is created by it.
    crosslink(&mut ns, 20, "alice", "bobs", ("bob", "app")).unwrap();
    let info = ns.info("alice", "bobs").unwrap();
    assert_eq!(info.target.as_ref().unwrap().raw(), "../bob/app.flist");
    assert_eq!(info.target.as_ref().unwrap().cleaned(), "bob/app.flist");
    assert_eq!(info.updated(), 10);
    assert_eq!(ns.updated("alice"), 20);
    not_found(
        crosslink(&mut ns, 30, "alice", "x", ("nobody", "app")),
        "source repository not found",
    );
    not_found(
        crosslink(&mut ns, 30, "alice", "x", ("bob", "missing")),
        "source not found",
    );
    // Through a crosslink to a link of the other repository.
    ns.link(40, "bob", "app", "latest").unwrap();
    crosslink(&mut ns, 50, "alice", "bobs-latest", ("bob", "latest")).unwrap();
    assert_eq!(
        ns.resolves_to("alice", "bobs-latest"),
        Some(file("a").sha256)
    );
}
