// Package systest holds bankd's system tests: real ZooKeeper servers
// (zktest) and several in-process nodes, each with its own data dir and
// HTTP server on a loopback port, driven only through the HTTP API.
package systest
