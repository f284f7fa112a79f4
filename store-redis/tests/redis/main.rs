//! Tests of the Redis session store against a real `redis-server` on
//! loopback: the shared store contract, the record format, leases between two
//! store instances, the remote events feed, a server restart, and the store
//! against a three-node Redis Cluster.

mod cluster;
mod cluster_server;
mod common;
mod contract;
mod expiry;
mod lease;
mod logs;
mod outage;
mod records;
mod remote;
mod server;
mod transcript;
