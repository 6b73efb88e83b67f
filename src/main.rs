use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = stagefit::cli::Cli::parse();
    let default_level = match cli.command {
        stagefit::cli::Command::Serve(_) => "info,sqlx=warn,tantivy=warn,sea_orm=warn",
        _ => "warn",
    };
    let settings = stagefit::config::LogSettings::from_env();
    let filter = settings
        .filter
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    // JSON: one object per line, with the fields of the spans it happened in (a request's
    // `request_id` among them), for log collectors.
    let json = settings.json;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match stagefit::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
