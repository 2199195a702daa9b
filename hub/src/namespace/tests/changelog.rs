//! The change log: one record per applied change, numbered, self-contained, in order.

use hubapi::changes::{ChangeEvent, FileRef};

use super::*;
use crate::namespace::log;

#[test]
fn every_kind_of_change_is_recorded_with_its_sequence() {
    let mut ns = Ns::new();
    let mut seqs = Vec::new();
    let mut record = |applied: Applied| seqs.push(applied.recorded.unwrap().0);
    record(ns.publish(1, "builds", "app", "a"));
    record(ns.link(2, "builds", "app", "latest").unwrap());
    record(
        ns.at(
            3,
            Change::Crosslink {
                repository: repo("alice"),
                link: flist("bapp"),
                source_repository: repo("builds"),
                source: flist("app"),
            },
        )
        .unwrap(),
    );
    record(
        ns.at(
            4,
            Change::Tag {
                repository: repo("builds"),
                tag: tag("v1"),
                link: flist("app"),
                source_repository: repo("builds"),
                source: flist("app"),
            },
        )
        .unwrap(),
    );
    let crosstag = |kind: fn(RepoName, TaglinkName, RepoName, TagName) -> Change| {
        kind(repo("alice"), taglink("rel"), repo("builds"), tag("v1"))
    };
    record(
        ns.at(
            5,
            crosstag(|repository, link, tag_repository, tag| Change::Crosstag {
                repository,
                link,
                tag_repository,
                tag,
            }),
        )
        .unwrap(),
    );
    record(
        ns.at(
            6,
            crosstag(|repository, link, tag_repository, tag| Change::Uncrosstag {
                repository,
                link,
                tag_repository,
                tag,
            }),
        )
        .unwrap(),
    );
    record(
        ns.at(
            7,
            Change::Untag {
                repository: repo("builds"),
                tag: tag("v1"),
                link: flist("app"),
            },
        )
        .unwrap(),
    );
    record(
        ns.at(
            8,
            Change::Rename {
                repository: repo("builds"),
                source: flist("latest"),
                destination: flist("current"),
                force: false,
            },
        )
        .unwrap(),
    );
    record(
        ns.at(
            9,
            Change::Promote {
                repository: repo("alice"),
                source_repository: repo("builds"),
                source: flist("current"),
                local: flist("copy"),
            },
        )
        .unwrap(),
    );
    record(
        ns.at(
            10,
            Change::Delete {
                repository: repo("alice"),
                name: flist("bapp"),
                or_taglink: taglink("bapp"),
            },
        )
        .unwrap(),
    );
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());

    let records = log::read(&ns.conn, 0, 100).unwrap();
    assert_eq!(records.len(), 10);
    let kinds: Vec<String> = records
        .iter()
        .map(|r| {
            serde_json::to_value(&r.change).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "publish",
            "link",
            "crosslink",
            "tag",
            "crosstag",
            "uncrosstag",
            "untag",
            "rename",
            "promote",
            "delete"
        ]
    );
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(record.time, i as i64 + 1);
        assert_eq!(record.actor.as_deref(), Some("tester"));
    }
    // Self-contained: a promote names the file it copied, resolved through the link.
    assert_eq!(
        records[8].change,
        ChangeEvent::Promote {
            repository: "alice".into(),
            name: "copy.flist".into(),
            source_repository: "builds".into(),
            source_name: "current.flist".into(),
            file: FileRef {
                sha256: file("a").sha256,
                md5: file("a").md5,
                size: file("a").size,
            },
        }
    );
    assert!(log::read(&ns.conn, 10, 10).unwrap().is_empty());
}

#[test]
fn refused_changes_leave_no_record_and_pages_follow_each_other() {
    let mut ns = Ns::new();
    for i in 0..25 {
        ns.publish(i, "alice", &format!("f{i}"), &format!("{i}"));
        let _ = ns.link(i, "alice", "missing", "x");
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = log::read(&ns.conn, after, 10).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().seq;
        seen.extend(page.into_iter().map(|r| r.seq));
    }
    assert_eq!(seen, (1..=25).collect::<Vec<u64>>());
}

#[test]
fn the_audit_table_becomes_the_log() {
    // A database made before the log existed, with one audit row.
    let mut conn = Connection::open_in_memory().unwrap();
    for sql in &crate::db::MIGRATIONS[..3] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
    conn.execute(
        "INSERT INTO audit (time, actor, action, repository, name, detail)
         VALUES (5, 'alice', 'link', 'alice', 'latest.flist', 'app.flist')",
        [],
    )
    .unwrap();
    crate::db::migrate(&mut conn).unwrap();
    let records = log::read(&conn, 0, 10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].change,
        ChangeEvent::Audit {
            action: "link".into(),
            repository: "alice".into(),
            name: Some("latest.flist".into()),
            detail: Some("app.flist".into()),
        }
    );
}
