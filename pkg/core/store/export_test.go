package store

// WhereKeys is whereKeys, for the specs of how a batch's rows are read.
var WhereKeys = whereKeys
