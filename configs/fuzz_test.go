package configs

import (
	"fmt"
	"testing"
	"time"
)

func FuzzLoad(f *testing.F) {
	f.Add([]byte(header))
	f.Add([]byte(header + "port: abc\n"))
	f.Add([]byte(header + "evictionHard: {memory.available: 1Gi}\nregisterWithTaints: [{key: a, effect: NoSchedule}]\n"))
	f.Add([]byte(`{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","authentication":{"webhook":{"cacheTTL":"1m"}}}`))
	f.Add([]byte("- a\n"))
	f.Add([]byte(header + "containerLogMaxSize: 1e100000\npodPidsLimit: -5\n"))
	f.Add([]byte(header + "containerLogMaxSize: 1e-999999999\n"))
	f.Add([]byte(header + "reservedMemory: [{numaNode: 0, limits: {memory: '1e-999999999'}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A slow input is a bug too: resource.ParseQuantity once spun for
		// minutes on "1e-999999999".
		timer := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("loadData too slow on %q", data)) })
		defer timer.Stop()
		cfg, _, err := loadData("/fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err == nil {
			if verr := Validate(cfg); verr != nil {
				t.Fatalf("loaded config does not validate: %v", verr)
			}
		}
	})
}
