package kratos

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel SIGTERM Kratos if this process dies
// without calling Close (a killed test binary, a crashed `fanfare dev`).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
