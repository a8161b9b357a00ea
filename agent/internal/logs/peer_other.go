//go:build !linux

package logs

import "net"

// checkPeer relies on the socket's 0600 mode where SO_PEERCRED is missing.
func checkPeer(net.Conn) error { return nil }
