// Package file is a Source over a directory of YAML or JSON files, watched
// with fsnotify and diffed per file. What a file holds is up to a Decoder,
// so Discovery (registrations) and Engine (runtime instances) share the
// directory handling.
//
// Files whose name ends in .yaml, .yml or .json and does not start with a
// dot are read; subdirectories are ignored. A file that cannot be read or
// decoded is logged and contributes nothing until it is fixed, in List and
// Watch alike, so a malformed file never stops the source. Keys must be
// unique across files. The directory itself must exist when the source is
// opened; if it disappears later the watch ends with an error.
package file
