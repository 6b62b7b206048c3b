package nodecerts

import (
	"crypto/tls"
	"errors"
	"fmt"

	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
)

// tolerantStore is a certificate store whose stored pair, when it does not
// load (a half-written or truncated file, garbage), counts as no pair: the
// certificate manager then requests a new one, as for a first start,
// instead of failing the agent's start (client-go's manager gives up on any
// error but "no pair"). The bad file is named in a warning and left as it
// is; the new pair is written beside it and the -current link moved.
type tolerantStore struct {
	certificate.FileStore
	logger klog.Logger
	what   string
}

var _ certificate.FileStore = tolerantStore{}

func (s tolerantStore) Current() (*tls.Certificate, error) {
	c, err := s.FileStore.Current()
	var none *certificate.NoCertKeyError
	if err == nil || errors.As(err, &none) {
		return c, err
	}
	s.logger.Info("Warning: the stored certificate does not load; requesting a new one", "certificate", s.what, "path", s.CurrentPath(), "err", err)
	noPair := certificate.NoCertKeyError(fmt.Sprintf("the stored %s certificate does not load: %v", s.what, err))
	return nil, &noPair
}
