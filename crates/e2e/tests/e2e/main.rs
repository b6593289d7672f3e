//! End-to-end tests of enc: the real `enc-server` and `enc` binaries (and third-party tools
//! such as `age`), one server per test on an ephemeral port.

mod harness;

mod basics;
mod cli;
mod devices;
mod erasure;
mod export;
mod faults;
mod hardening;
mod integrity;
mod limits;
mod mercury;
mod outages;
mod readme;
mod records;
mod replicas;
mod restic;
mod restic_protocol;
mod schema;
mod security;
mod signing;
mod trees;
mod upgrade;
