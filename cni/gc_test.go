package cni

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// An ADD cut short by the agent's death (its intent written, nothing
// cached) is deleted by the next process's first collection with the
// config and arguments ADD had; a finished ADD leaves no intent.
func TestCollectGarbageInterruptedAdd(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	if _, err := m.Setup(context.Background(), testPod()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if entries, _ := os.ReadDir(m.pendingDir()); len(entries) != 0 {
		t.Fatalf("a finished ADD left intents: %v", entries)
	}
	// The death: the plugins ran (an address is held), no cache entry.
	list, _ := m.current()
	pn := testPod()
	pn.SandboxID = "sb2"
	rt := runtimeConf(pn, pn.NetNSPath)
	if err := m.recordIntent(list, rt); err != nil {
		t.Fatal(err)
	}
	fe.take()

	m2 := New(m.cfg, fe)
	mustLoad(t, m2)
	now := time.Now()
	// sb1 is listed (a running sandbox); sb2 is not.
	m2.CollectGarbage(context.Background(), map[string]bool{"sb1": true}, now)
	calls := fe.take()
	if got, want := commands(calls), []string{"DEL bandwidth", "DEL portmap", "DEL bridge"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for _, c := range calls {
		if c.ContainerID != "sb2" || c.Conf["name"] != "podnet" {
			t.Errorf("DEL %s of %s in %v", c.Plugin, c.ContainerID, c.Conf["name"])
		}
	}
	if _, err := os.Stat(m.pendingFile("sb2")); !os.IsNotExist(err) {
		t.Errorf("intent still there: %v", err)
	}
	// sb1's cache entry stays while its sandbox is listed.
	m2.CollectGarbage(context.Background(), map[string]bool{"sb1": true}, now.Add(2*time.Minute))
	if calls := fe.take(); len(calls) != 0 {
		t.Errorf("a listed sandbox's network was deleted: %v", commands(calls))
	}
}

// A cached attachment whose sandbox the runtime no longer lists is
// deleted once it is older than gcMinAge; a young one is left alone.
func TestCollectGarbageCachedAttachment(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	if _, err := m.Setup(context.Background(), testPod()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	fe.take()
	m.CollectGarbage(context.Background(), nil, time.Now())
	if calls := fe.take(); len(calls) != 0 {
		t.Fatalf("a young cache entry was collected: %v", commands(calls))
	}
	m.CollectGarbage(context.Background(), nil, time.Now().Add(2*gcMinAge))
	if got, want := commands(fe.take()), []string{"DEL bandwidth", "DEL portmap", "DEL bridge"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(m.resultsDir()); len(entries) != 0 {
		t.Errorf("cache entries left: %v", entries)
	}
}

// An intent that does not parse is deleted with the current config.
func TestCollectGarbageUnreadableIntent(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	if err := os.MkdirAll(m.pendingDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.pendingDir(), "sb3"), []byte(`{"config": tru`), 0o600); err != nil {
		t.Fatal(err)
	}
	m.CollectGarbage(context.Background(), nil, time.Now())
	calls := fe.take()
	if len(calls) != 3 || calls[0].ContainerID != "sb3" {
		t.Fatalf("calls = %v", commands(calls))
	}
	if _, err := os.Stat(m.pendingFile("sb3")); !os.IsNotExist(err) {
		t.Errorf("intent still there: %v", err)
	}
}
