// Package migration moves a Redis pool's data when it is resharded
// (migrate_from, the README's Resharding): the keys whose owner changed
// go from their old owner to their new one with MIGRATE, or through the
// proxy with DUMP and RESTORE where the source cannot MIGRATE
// (restore.go).
//
// It does not place keys: the pool does, in one place (package proxy's
// routing), and tells a migration where a key was and is through a small
// seam, Pool and its Placement, which the pool fills in, along with the
// counters a move adds to (keys_migrated, migration_errors), the options
// of a server's connections and the goroutines its close waits for.
//
// A State is one migration: the keys in flight, the lanes that keep
// MIGRATEs from waiting on each other, and the progress of the
// background scan (migration_pending). The pool's Mover moves keys on
// access (Access: a request waits for the moves of its keys, at most the
// pool's timeout), and runs a scanner per migration that walks each old
// owner with SCAN within migrate_rate (scanner.go). Every move runs on
// connections of the migration's own (moveconn.go), never on the
// clients' shared ones, and without the pool's timeout.
//
// Into a Redis Cluster (a cluster pool with migrate_from), the new owners
// are the primaries of the keys' slots, none of them an old owner, so the
// scanner moves every key it finds; a target that no longer serves a
// key's slot refuses it inside MIGRATE's error, and the keys left are
// placed again by the pool's fresher map and moved again (redirect.go).
package migration
