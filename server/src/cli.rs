//! Command line: raw flags, then the validated settings the server runs with.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "carbon-dash", version, about = "Dashboard for the carbon footprint of ML runs logged by CodeCarbon")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard for the CodeCarbon logs under DIR (or the built-in demo logs).
    Serve {
        /// Folder searched recursively for *.csv, *.csv.bak and *.csv_N.bak. Without it: demo logs.
        dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Folder with the built browser assets (pkg/ with the wasm, JS and CSS).
        #[arg(long, env = "CARBON_DASH_SITE_ROOT", default_value = "site")]
        site_root: PathBuf,
        /// Multiply the energy of cloud runs that carry no `pue` column by the provider's published PUE.
        #[arg(long)]
        apply_provider_pue: bool,
        /// Hosted mode: no route writes anything (the default of the container image).
        #[arg(long)]
        read_only: bool,
    },
}

/// Where the logs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Demo,
    Dir(PathBuf),
}

/// Settings checked before anything starts.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub source: Source,
    pub addr: SocketAddr,
    pub site_root: PathBuf,
    /// The browser assets are present: without them pages still work, without interactivity.
    pub hydration_assets: bool,
}

impl ServeSettings {
    pub fn from_args(dir: Option<PathBuf>, addr: SocketAddr, site_root: PathBuf) -> anyhow::Result<ServeSettings> {
        let source = match dir {
            None => Source::Demo,
            Some(d) if d.is_dir() => Source::Dir(d),
            Some(d) if d.exists() => {
                anyhow::bail!("{} is not a folder: give the folder that holds the CSV logs", d.display())
            }
            Some(d) => anyhow::bail!("{}: no such folder", d.display()),
        };
        let hydration_assets = site_root.join("pkg").join(format!("{}.js", app::OUTPUT_NAME)).is_file();
        Ok(ServeSettings { source, addr, site_root, hydration_assets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_parses_dir_and_addr_and_rejects_a_missing_folder() {
        let cli = Cli::parse_from(["carbon-dash", "serve", "logs", "--addr", "0.0.0.0:8080"]);
        let Command::Serve { dir, addr, apply_provider_pue, read_only, .. } = cli.command;
        assert!(!apply_provider_pue && !read_only);
        assert_eq!(dir, Some(PathBuf::from("logs")));
        assert_eq!(addr.port(), 8080);
        let err = ServeSettings::from_args(Some("/no/such/dir".into()), addr, "site".into());
        assert!(err.is_err_and(|e| e.to_string().contains("no such folder")));
    }
}
