//! Tags, their members, and taglinks (crosstag): 0-hub's release sets.

use super::*;
use crate::namespace::views::Target;

fn tag_change(repository: &str, t: &str, link: &str, source: (&str, &str)) -> Change {
    Change::Tag {
        repository: repo(repository),
        tag: tag(t),
        link: flist(link),
        source_repository: repo(source.0),
        source: flist(source.1),
    }
}

fn crosstag(repository: &str, link: &str, target: (&str, &str)) -> Change {
    Change::Crosstag {
        repository: repo(repository),
        link: taglink(link),
        tag_repository: repo(target.0),
        tag: tag(target.1),
    }
}

fn untag(repository: &str, t: &str, link: &str) -> Change {
    Change::Untag {
        repository: repo(repository),
        tag: tag(t),
        link: flist(link),
    }
}

#[test]
fn a_tag_lists_its_members_as_links_and_exists_while_it_has_some() {
    let mut ns = Ns::new();
    ns.publish(10, "builds", "zos-1", "z1");
    ns.publish(11, "builds", "zos-2", "z2");
    ns.at(
        20,
        tag_change("tf-zos", "v3", "zos.flist", ("builds", "zos-1")),
    )
    .unwrap();
    ns.at(21, tag_change("tf-zos", "v3", "net", ("builds", "zos-2")))
        .unwrap();
    let members = read::list_tag(&ns.conn, "tf-zos", "v3").unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].name, "net.flist");
    assert_eq!(members[0].kind, Kind::Symlink);
    assert_eq!(
        members[0].target.as_ref().unwrap().cleaned(),
        "builds/zos-2.flist"
    );
    assert_eq!((members[0].updated, members[0].linktime), (11, Some(21)));

    ns.at(30, untag("tf-zos", "v3", "net")).unwrap();
    assert_eq!(read::list_tag(&ns.conn, "tf-zos", "v3").unwrap().len(), 1);
    ns.at(31, untag("tf-zos", "v3", "zos")).unwrap();
    match read::list_tag(&ns.conn, "tf-zos", "v3") {
        Err(Error::NotFound(m)) => assert_eq!(m, "tag not found"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ns.names("tf-zos"), []);
}

#[test]
fn tagging_needs_a_source_untagging_does_not() {
    let mut ns = Ns::new();
    ns.publish(1, "builds", "a", "a");
    not_found(
        ns.at(2, tag_change("rel", "v1", "a", ("nobody", "a"))),
        "source repository not found",
    );
    not_found(
        ns.at(2, tag_change("rel", "v1", "a", ("builds", "missing"))),
        "source not found",
    );
    ns.at(3, tag_change("rel", "v1", "a", ("builds", "a")))
        .unwrap();
    ns.at(
        4,
        Change::Delete {
            repository: repo("builds"),
            name: flist("a"),
            or_taglink: taglink("a"),
        },
    )
    .unwrap();
    // 0-hub could not untag once the source was gone.
    ns.at(5, untag("rel", "v1", "a")).unwrap();
    not_found(
        ns.at(6, untag("rel", "v1", "a")),
        "target not found on this tag",
    );
}

#[test]
fn a_taglink_points_at_a_tag_anywhere() {
    let mut ns = Ns::new();
    ns.publish(10, "builds", "zos", "z");
    ns.at(20, tag_change("builds", "v3", "zos", ("builds", "zos")))
        .unwrap();
    ns.at(30, crosstag("tf-zos", "production", ("builds", "v3")))
        .unwrap();
    let listed = ns.list("tf-zos").unwrap();
    assert_eq!(listed.len(), 1);
    let link = &listed[0];
    assert_eq!((link.kind, link.size), (Kind::Taglink, None));
    assert_eq!(link.target.as_ref().unwrap().cleaned(), "builds/tags/v3");
    assert_eq!(link.target.as_ref().unwrap().raw(), "../builds/.tag-v3");
    assert_eq!(
        (link.updated, link.linktime),
        (20, Some(30)),
        "the tag's time, its own"
    );
    assert_eq!(
        read::taglink(&ns.conn, "tf-zos", "production").unwrap(),
        Target::Tag {
            repository: "builds".into(),
            tag: "v3".into()
        }
    );
    // A taglink has no flist name: `light` does not know it.
    not_found(
        ns.info("tf-zos", "production").map(|_| unreachable!()),
        "source not found",
    );
    // Moving the taglink to another tag replaces it.
    ns.at(40, tag_change("builds", "v4", "zos", ("builds", "zos")))
        .unwrap();
    ns.at(50, crosstag("tf-zos", "production", ("builds", "v4")))
        .unwrap();
    assert_eq!(
        ns.list("tf-zos").unwrap()[0]
            .target
            .as_ref()
            .unwrap()
            .cleaned(),
        "builds/tags/v4"
    );
}

#[test]
fn crosstag_refusals_are_0_hubs() {
    let mut ns = Ns::new();
    ns.publish(1, "builds", "zos", "z");
    ns.at(2, tag_change("builds", "v3", "zos", ("builds", "zos")))
        .unwrap();
    link_conflict(
        ns.at(3, crosstag("rel", "x.flist", ("builds", "v3"))),
        "tag symlink cannot ends with .flist",
    );
    not_found(
        ns.at(3, crosstag("rel", "x", ("builds", "v9"))),
        "source tag not found",
    );
    not_found(
        ns.at(3, crosstag("rel", "x", ("nobody", "v3"))),
        "source tag not found",
    );
    ns.publish(4, "rel", "x", "x");
    link_conflict(
        ns.at(5, crosstag("rel", "x", ("builds", "v3"))),
        "there is a .flist file with the same name existing already",
    );
}

#[test]
fn uncrosstag_removes_only_the_taglink_it_names() {
    let mut ns = Ns::new();
    ns.publish(1, "builds", "zos", "z");
    ns.at(2, tag_change("builds", "v3", "zos", ("builds", "zos")))
        .unwrap();
    ns.at(3, crosstag("rel", "prod", ("builds", "v3"))).unwrap();
    let uncrosstag = |t: &str| Change::Uncrosstag {
        repository: repo("rel"),
        link: taglink("prod"),
        tag_repository: repo("builds"),
        tag: tag(t),
    };
    match refused(ns.at(4, uncrosstag("v9"))) {
        Error::NotFound(m) => assert!(m.contains("no taglink"), "{m}"),
        other => panic!("{other:?}"),
    }
    ns.at(5, uncrosstag("v3")).unwrap();
    assert_eq!(ns.names("rel"), []);
}
