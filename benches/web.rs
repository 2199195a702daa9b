//! The web pages under load: wrk on loopback against the real `flisthub serve` holding
//! 1,000 repositories of 20 entries (the hub bench's populated hub), beside the same server
//! answering a route that touches no database (its HTTP floor):
//!
//! * `/`, the home page (official repositories, then the first 100 contributors, figures);
//! * `/<repo>` of the 1,000 repositories, in a scattered order;
//! * `/<repo>/<name>.flist.md`, the preview page of the 20,000 names, in a scattered order:
//!   once from the page cache (every page fits), and once as the first seconds of a new
//!   server process each run, when nearly every request renders its page (the cache and
//!   the hub's answers are empty; 20,000 names take several seconds to go round).
//!
//! ```sh
//! cargo bench --bench web
//! FLISTHUB_BENCH_RUNS=5 FLISTHUB_BENCH_SECONDS=20 cargo bench --bench web
//! ```
//!
//! wrk must be installed (`scripts/test-all` installs it).

mod common;

use common::load::{
    CONNECTIONS, have, names, paths_script, populated_hub, print_wrk, repository, wrk, wrk_median,
};

fn main() {
    if !have("wrk") {
        eprintln!("wrk is needed (scripts/test-all installs it)");
        return;
    }
    let work = common::work_dir();
    let runs = common::runs();
    let seconds: u64 = std::env::var("FLISTHUB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "{runs} runs per figure, median shown; wrk: 2 threads, {CONNECTIONS} connections, {seconds} s\n"
    );
    let hub = populated_hub(&work.join("hub-populated"));
    let repositories: Vec<String> = (0..common::load::REPOSITORIES)
        .map(|i| format!("/{}", repository(i)))
        .collect();
    let previews: Vec<String> = names()
        .iter()
        .map(|(repo, name)| format!("/{repo}/{name}.md"))
        .collect();
    let repositories = paths_script(&work, "web-repositories.lua", &repositories);
    let previews = paths_script(&work, "web-previews.lua", &previews);

    println!("| page | req/s | p50 | p99 | vs the HTTP floor |");
    println!("|---|---|---|---|---|");
    let floor = wrk_median(
        runs,
        seconds,
        &format!("{}/api/v1/no-such-route", hub.url),
        None,
        false,
    );
    print_wrk(
        "floor: an unknown API route (a 404, no database)",
        &floor,
        &floor,
    );
    let home = wrk_median(runs, seconds, &format!("{}/", hub.url), None, true);
    print_wrk("`/` (1,000 repositories)", &home, &floor);
    let repos = wrk_median(runs, seconds, &hub.url, Some(&repositories), true);
    print_wrk("`/<repo>` of 1,000 repositories", &repos, &floor);
    let pages = wrk_median(runs, seconds, &hub.url, Some(&previews), true);
    print_wrk("`/<repo>/<name>.flist.md` of 20,000 names", &pages, &floor);
    drop(hub);
    let mut cold: Vec<_> = (0..runs)
        .map(|_| {
            let hub = populated_hub(&work.join("hub-populated"));
            wrk(COLD_SECONDS, &hub.url, Some(&previews), true)
        })
        .collect();
    cold.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let cold = cold.swap_remove(cold.len() / 2);
    print_wrk(
        &format!(
            "`/<repo>/<name>.flist.md`, the first {COLD_SECONDS} s of a new process (rendered)"
        ),
        &cold,
        &floor,
    );
    println!(
        "\nrendered row: about {:.0} requests for 20,000 names in {COLD_SECONDS} s",
        cold.rps * COLD_SECONDS as f64
    );
}

/// Seconds of the rendered preview row: short enough that few names come round twice.
const COLD_SECONDS: u64 = 4;
