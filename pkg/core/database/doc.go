// Package database opens Admin's own database through GORM.
//
// Admin keeps its lease table and its resource store in one database. Three
// dialects are supported, chosen by Config.Driver:
//
//   - sqlite: the embedded default, a single file shared by every replica on
//     one machine. Open sets WAL, a 5 s busy timeout and BEGIN IMMEDIATE
//     transactions, so that several processes can write to the file and a
//     transaction that reads before it writes never fails to upgrade its lock.
//   - mysql: MySQL or MariaDB. Open forces parseTime, UTC and clientFoundRows
//     (without it an UPDATE that writes identical values reports 0 rows).
//   - postgres: PostgreSQL, through pgx.
//
// On both servers every network read and write is bounded (Config.IOTimeout),
// so that no statement, COMMIT included, waits forever on a dead connection.
//
// A DSN may carry secrets: the password, and parameters such as sslpassword
// or passfile. Nothing in this package prints one: every error names the DSN
// through Redact, which hides every parameter whose key ends in password or
// passfile (any case) in MySQL DSNs, PostgreSQL URLs and key=value DSNs.
package database
