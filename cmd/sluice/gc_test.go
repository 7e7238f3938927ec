package main

import (
	"testing"
	"testing/fstest"
)

func TestCgroupMemoryLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name string
		fs   fstest.MapFS
		want int64
		ok   bool
	}{
		{"no proc", fstest.MapFS{}, 0, false},
		{"v2 namespaced", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("536870912\n"),
		}, 536870912, true},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, false},
		{"v2 systemd unit, limit on the slice", fstest.MapFS{
			"proc/self/cgroup": file("0::/system.slice/sluice.service\n"),
			"sys/fs/cgroup/system.slice/sluice.service/memory.max": file("max\n"),
			"sys/fs/cgroup/system.slice/memory.max":                file("1073741824\n"),
		}, 1073741824, true},
		{"v2 tightest wins", fstest.MapFS{
			"proc/self/cgroup":             file("0::/a/b\n"),
			"sys/fs/cgroup/a/b/memory.max": file("100000000\n"),
			"sys/fs/cgroup/a/memory.max":   file("200000000\n"),
		}, 100000000, true},
		{"v1", fstest.MapFS{
			"proc/self/cgroup":                           file("5:cpuacct,cpu:/\n4:memory:/docker/abc\n0::/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("268435456\n"),
		}, 268435456, true},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0, false},
		{"garbage", fstest.MapFS{
			"proc/self/cgroup":         file("nonsense\n0::/\n"),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cgroupMemoryLimit(tt.fs)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("cgroupMemoryLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
