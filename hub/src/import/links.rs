//! The links of the tree: symlinks and crosslinks (each once what it names is in the
//! namespace, so chains resolve in any order and what never resolves is a dangling link),
//! tag members, and taglinks; each made at its link time by the namespace's own change,
//! unless the namespace already has it so.

use super::scan::{Link, Repository, Skipped};
use super::{ACTOR, Counted, Importer, State};
use crate::error::Result;
use crate::names::RepoName;
use crate::namespace::{Change, Kind, Target};

impl Importer {
    pub(super) async fn import_links(
        &self,
        repositories: &[Repository],
        state: &mut State,
        summary: &mut super::Summary,
    ) -> Result<()> {
        let mut pending: Vec<(&RepoName, &Link)> = repositories
            .iter()
            .flat_map(|r| r.links.iter().map(move |l| (&r.name, l)))
            .collect();
        loop {
            let before = pending.len();
            let mut waiting = Vec::new();
            for (repository, link) in pending {
                let source = link.repository.as_ref().unwrap_or(repository);
                if !state
                    .flists
                    .contains(&(source.to_string(), link.target.to_string()))
                {
                    waiting.push((repository, link));
                    continue;
                }
                let target = match &link.repository {
                    None => Target::Local(link.target.to_string()),
                    Some(r) => Target::Flist {
                        repository: r.to_string(),
                        name: link.target.to_string(),
                    },
                };
                if state.holds_link(
                    (repository.as_str(), link.name.as_str()),
                    Kind::Symlink,
                    &target,
                    link.linktime,
                ) {
                    summary.symlinks.unchanged += 1;
                } else {
                    let change = match &link.repository {
                        None => Change::Link {
                            repository: repository.clone(),
                            source: link.target.clone(),
                            link: link.name.clone(),
                        },
                        Some(r) => Change::Crosslink {
                            repository: repository.clone(),
                            link: link.name.clone(),
                            source_repository: r.clone(),
                            source: link.target.clone(),
                        },
                    };
                    if !self
                        .apply(change, link, &mut summary.symlinks, &mut summary.skipped)
                        .await?
                    {
                        continue;
                    }
                }
                state
                    .flists
                    .insert((repository.to_string(), link.name.to_string()));
            }
            pending = waiting;
            if pending.len() == before {
                break;
            }
        }
        for (_, link) in pending {
            summary.skipped.push(dangling(link));
        }
        Ok(())
    }

    pub(super) async fn import_tags(
        &self,
        repositories: &[Repository],
        state: &mut State,
        summary: &mut super::Summary,
    ) -> Result<()> {
        for repository in repositories {
            for tag in &repository.tags {
                let stored = state
                    .stored
                    .get(repository.name.as_str())
                    .and_then(|s| s.tags.get(tag.name.as_str()));
                let mut held = false;
                for member in &tag.members {
                    let Some(source) = member.repository.clone() else {
                        continue;
                    };
                    if !state
                        .flists
                        .contains(&(source.to_string(), member.target.to_string()))
                    {
                        summary.skipped.push(dangling(member));
                        continue;
                    }
                    let wanted = (
                        source.to_string(),
                        member.target.to_string(),
                        member.linktime,
                    );
                    if stored.and_then(|t| t.members.get(member.name.as_str())) == Some(&wanted) {
                        summary.tag_members.unchanged += 1;
                        held = true;
                        continue;
                    }
                    let change = Change::Tag {
                        repository: repository.name.clone(),
                        tag: tag.name.clone(),
                        link: member.name.clone(),
                        source_repository: source,
                        source: member.target.clone(),
                    };
                    held |= self
                        .apply(
                            change,
                            member,
                            &mut summary.tag_members,
                            &mut summary.skipped,
                        )
                        .await?;
                }
                if held {
                    state
                        .tags
                        .insert((repository.name.to_string(), tag.name.to_string()));
                } else if tag.members.is_empty() {
                    summary.skipped.push(Skipped {
                        path: format!("{}/.tag-{}", repository.name, tag.name),
                        reason: "an empty tag (flisthub keeps a tag while it has members)".into(),
                    });
                }
            }
        }
        Ok(())
    }

    pub(super) async fn import_taglinks(
        &self,
        repositories: &[Repository],
        state: &State,
        summary: &mut super::Summary,
    ) -> Result<()> {
        for repository in repositories {
            for taglink in &repository.taglinks {
                let key = (taglink.repository.to_string(), taglink.tag.to_string());
                if !state.tags.contains(&key) {
                    summary.skipped.push(Skipped::new(
                        &taglink.path,
                        format!(
                            "a dangling taglink: no tag {}/{} was imported",
                            key.0, key.1
                        ),
                    ));
                    continue;
                }
                let target = Target::Tag {
                    repository: key.0,
                    tag: key.1,
                };
                if state.holds_link(
                    (repository.name.as_str(), taglink.name.as_str()),
                    Kind::Taglink,
                    &target,
                    taglink.linktime,
                ) {
                    summary.taglinks.unchanged += 1;
                    continue;
                }
                let change = Change::Crosstag {
                    repository: repository.name.clone(),
                    link: taglink.name.clone(),
                    tag_repository: taglink.repository.clone(),
                    tag: taglink.tag.clone(),
                };
                match self.namespace.apply(change, ACTOR, taglink.linktime).await {
                    Ok(_) => summary.taglinks.added += 1,
                    Err(e) => summary
                        .skipped
                        .push(Skipped::new(&taglink.path, e.to_string())),
                }
            }
        }
        Ok(())
    }

    /// Applies a link's change at its link time; whether it was made (a refusal is the
    /// link's problem, reported; a failure of the database stops the run).
    async fn apply(
        &self,
        change: Change,
        link: &Link,
        counted: &mut Counted,
        skipped: &mut Vec<Skipped>,
    ) -> Result<bool> {
        match self.namespace.apply(change, ACTOR, link.linktime).await {
            Ok(_) => {
                counted.added += 1;
                Ok(true)
            }
            Err(e @ (crate::Error::Database(_) | crate::Error::Io { .. })) => Err(e),
            Err(e) => {
                skipped.push(Skipped::new(&link.path, e.to_string()));
                Ok(false)
            }
        }
    }
}

fn dangling(link: &Link) -> Skipped {
    Skipped::new(
        &link.path,
        format!(
            "a dangling link: {:?} names no flist that was imported",
            link.text
        ),
    )
}
