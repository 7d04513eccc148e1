package securitytest

import (
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/nats"
)

// TestEmbeddedNATSListensOnlyOnLoopback starts the embedded broker, as
// deadletter --broker embedded does, and checks every TCP port that the
// process opens for it: there is one, the client port, on loopback. A
// monitoring, cluster or leaf node port would show up here.
func TestEmbeddedNATSListensOnlyOnLoopback(t *testing.T) {
	before := listeningAddrs(t)
	serverURL, shutdown, err := nats.StartEmbedded(t.TempDir())
	require.NoError(t, err)
	defer shutdown()
	after := listeningAddrs(t)

	var opened []string
	for addr := range after {
		if !before[addr] {
			opened = append(opened, addr)
		}
	}
	require.Len(t, opened, 1, "the embedded server opens its client port only: %v", opened)

	host, _, err := net.SplitHostPort(opened[0])
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsLoopback(), "the embedded server listens on %s", opened[0])
	parsed, err := url.Parse(serverURL)
	require.NoError(t, err)
	require.Equal(t, opened[0], parsed.Host, "the URL names the port listened on")
}

// listeningAddrs returns the host:port of every TCP socket this process
// listens on, read from /proc, so it works on Linux only.
func listeningAddrs(t *testing.T) map[string]bool {
	t.Helper()
	ours := socketInodes(t)
	addrs := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if os.IsNotExist(err) && table == "/proc/net/tcp6" {
			continue
		}
		require.NoError(t, err, "read the socket table; the test needs Linux")

		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, line := range lines[1:] {
			// Columns: slot, local address, remote address, state (0A is
			// LISTEN), queues, timer, retransmits, uid, timeout, inode.
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" || !ours[fields[9]] {
				continue
			}
			addrs[decodeProcAddr(t, fields[1])] = true
		}
	}
	return addrs
}

// socketInodes returns the inodes of the sockets open in this process.
func socketInodes(t *testing.T) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue // closed since the listing
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return inodes
}

// decodeProcAddr turns an address of /proc/net/tcp, such as 0100007F:1F90,
// into host:port. The kernel prints the address as 32-bit words in host
// byte order, little-endian on the machines this runs on, and the port in
// hex.
func decodeProcAddr(t *testing.T, s string) string {
	t.Helper()
	hexIP, hexPort, ok := strings.Cut(s, ":")
	require.True(t, ok, "address %q", s)
	raw, err := hex.DecodeString(hexIP)
	require.NoError(t, err)
	for word := 0; word+4 <= len(raw); word += 4 {
		raw[word], raw[word+1], raw[word+2], raw[word+3] = raw[word+3], raw[word+2], raw[word+1], raw[word]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	require.NoError(t, err)
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10))
}
