//go:build !linux

package kratos

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
