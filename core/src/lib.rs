//! carbon-dash's domain: CodeCarbon log ingest and the run model. No web dependency.
//!
//! Data flows one way: files → [`ingest`] (a report and the runs each file tells of) → [`catalog`]
//! (runs across files) → [`model`] types that the views render, with [`units`] for display.

pub mod budget;
pub mod live;
pub mod model;
pub mod pages;
pub mod pareto;
pub mod plan;
pub mod query;
pub mod schedule;
pub mod text;
pub mod time;
pub mod units;

#[cfg(feature = "ingest")]
pub mod catalog;
#[cfg(feature = "ingest")]
pub mod collect;
#[cfg(feature = "ingest")]
pub mod columns;
#[cfg(feature = "ingest")]
pub mod declare;
#[cfg(feature = "ingest")]
pub mod grid;
#[cfg(feature = "ingest")]
pub mod ingest;
#[cfg(feature = "ingest")]
pub mod metrics;
#[cfg(feature = "ingest")]
pub mod pareto_view;
#[cfg(feature = "ingest")]
pub mod parse_cache;
#[cfg(feature = "ingest")]
pub mod records;
#[cfg(feature = "ingest")]
pub mod report;
#[cfg(feature = "ingest")]
pub mod results;
#[cfg(feature = "ingest")]
pub mod stores;
#[cfg(feature = "ingest")]
pub mod timeseries;
#[cfg(feature = "ingest")]
pub mod trackers;
#[cfg(feature = "ingest")]
pub mod whatif;
