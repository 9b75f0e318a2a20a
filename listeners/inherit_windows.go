package listeners

import (
	"errors"
	"net"
	"os"
)

// dupSocket is not done on Windows, which has no binary upgrade.
func dupSocket(net.Listener) (*os.File, error) {
	return nil, errors.New("handing a listener over is not supported on windows")
}
