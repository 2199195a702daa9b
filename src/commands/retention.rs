//! `flisthub retention`: applies the hub's retention policies (or one repository's), asked
//! of the hub serving the data directory (or run here when none does), or of a remote hub
//! with an administrator's token; prints what was deleted (a dry run: what would be).

use anyhow::Result;

use super::gc::{Place, Target, local_place, show};
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    place: Place,
    /// Delete nothing: report, and list, what would go.
    #[arg(long)]
    dry_run: bool,
    /// This repository only.
    #[arg(long, value_name = "REPO")]
    repo: Option<String>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, config: hub::Config, ui: &Ui) -> Result<()> {
    let dry_run = args.dry_run;
    let only = args.repo.as_deref();
    let (report, where_) = match args.place.target(config)? {
        Target::Remote(client, url) => (client.retain(only, dry_run).await?, url),
        Target::Local(config) => {
            let (report, served) = hub::retain(&config, only, dry_run).await?;
            (report, local_place(&config, served)?)
        }
    };
    show(args.json, &report, |report| print(ui, report, &where_))
}

fn print(ui: &Ui, report: &hub::RetentionReport, where_: &str) {
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    // What goes on stdout, one `<repo>/<name>` a line; the rest is said.
    for repository in &report.repositories {
        for name in &repository.deleted {
            println!("{}/{name}", repository.repository);
        }
    }
    ui.say(format!(
        "retention on {where_}{}: {verb} {} flists in {} repositories with a policy, in {:.1}s",
        if report.dry_run { " (dry run)" } else { "" },
        ui::count(report.deleted),
        ui::count(report.repositories.len() as u64),
        report.duration_ms as f64 / 1000.0,
    ));
    for repository in &report.repositories {
        let mut line = format!(
            "  {}: {} of {} flists {verb}",
            repository.policy,
            ui::count(repository.deleted.len() as u64),
            ui::count(repository.flists),
        );
        if !repository.kept_linked.is_empty() {
            line += &format!(
                ", {} kept because linked",
                ui::count(repository.kept_linked.len() as u64)
            );
        }
        if !repository.changed.is_empty() {
            line += &format!(
                ", {} kept because they changed meanwhile",
                ui::count(repository.changed.len() as u64)
            );
        }
        ui.say(line);
    }
}
