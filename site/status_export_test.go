package site

// ReadEtcdMembers lets the tests read the members they name.
var ReadEtcdMembers = readEtcdMembers
