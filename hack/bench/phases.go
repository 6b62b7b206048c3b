package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// phaseMeans reads nodeagent's pod start breakdown from its /metrics (as
// the admin, with the harness's client certificate): the mean of each
// phase in milliseconds.
func phaseMeans(url, pki string) (map[string]float64, error) {
	cert, err := tls.LoadX509KeyPair(pki+"/admin.crt", pki+"/admin.key")
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(pki + "/ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	sums, counts := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for suffix, into := range map[string]map[string]float64{"_sum": sums, "_count": counts} {
			prefix := "nodeagent_pod_start_phase_duration_seconds" + suffix + `{phase="`
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				phase, val, _ := strings.Cut(rest, `"} `)
				v, _ := strconv.ParseFloat(val, 64)
				into[phase] = v
			}
		}
	}
	out := map[string]float64{}
	for p, n := range counts {
		if n > 0 {
			out[p] = sums[p] / n * 1000
		}
	}
	return out, sc.Err()
}
