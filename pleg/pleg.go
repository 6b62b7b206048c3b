package pleg

import (
	"context"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/cri"
)

// Relist periods with and without runtime events.
const (
	RelistWithEvents    = 10 * time.Second
	RelistWithoutEvents = 1 * time.Second
)

// Runtime is what the PLEG reads.
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, established func(runtimeapi.RuntimeService_GetContainerEventsClient)) error
}

var _ Runtime = internalapi.RuntimeService(nil)

// PLEG wakes pod workers when their pod changes in the runtime.
type PLEG struct {
	runtime Runtime
	wake    func(types.UID)
	clock   clock.WithTicker

	events chan bool // reports whether the event stream works
	last   map[types.UID]string
}

// New returns a PLEG calling wake for each pod that changed.
func New(rt Runtime, wake func(types.UID), clk clock.WithTicker) *PLEG {
	return &PLEG{runtime: rt, wake: wake, clock: clk, events: make(chan bool, 1), last: map[types.UID]string{}}
}

// Run watches events and relists until ctx ends.
func (p *PLEG) Run(ctx context.Context) {
	go p.watchEvents(ctx)
	period := RelistWithoutEvents
	timer := p.clock.NewTimer(period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ok := <-p.events:
			period = RelistWithoutEvents
			if ok {
				period = RelistWithEvents
			}
			continue
		case <-timer.C():
		}
		p.relist(ctx)
		timer.Reset(period)
	}
}

func (p *PLEG) setEvents(ok bool) {
	select {
	case p.events <- ok:
	default:
		select {
		case <-p.events:
		default:
		}
		p.events <- ok
	}
}

// watchEvents follows the runtime's container events, reconnecting with a
// back-off; a runtime without events leaves the relist alone in charge.
func (p *PLEG) watchEvents(ctx context.Context) {
	logger := klog.FromContext(ctx)
	backoff := time.Second
	for ctx.Err() == nil {
		ch := make(chan *runtimeapi.ContainerEventResponse, 128)
		done := make(chan error, 1)
		go func() {
			done <- p.runtime.GetContainerEvents(ctx, ch, func(runtimeapi.RuntimeService_GetContainerEventsClient) {
				p.setEvents(true)
				backoff = time.Second
			})
		}()
		var err error
	loop:
		for {
			select {
			case ev := <-ch:
				p.handle(ev)
			case err = <-done:
				break loop
			}
		}
		p.setEvents(false)
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			logger.Info("The runtime does not send container events; relisting every second", "relistPeriod", RelistWithoutEvents)
			backoff = 5 * time.Minute
		}
		select {
		case <-ctx.Done():
			return
		case <-p.clock.After(backoff):
		}
		if backoff < time.Minute {
			backoff *= 2
		}
	}
}

func (p *PLEG) handle(ev *runtimeapi.ContainerEventResponse) {
	sb := ev.GetPodSandboxStatus()
	if sb == nil || !cri.IsManaged(sb.Labels) {
		return
	}
	p.wake(types.UID(sb.GetMetadata().GetUid()))
}

// relist wakes the pods whose containers or sandboxes changed.
func (p *PLEG) relist(ctx context.Context) {
	sandboxes, err := p.runtime.ListPodSandbox(ctx, cri.ManagedSandboxFilter(""))
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Relist failed", "err", err)
		return
	}
	ctrs, err := p.runtime.ListContainers(ctx, cri.ManagedContainerFilter(""))
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Relist failed", "err", err)
		return
	}
	parts := map[types.UID][]string{}
	for _, s := range sandboxes {
		uid := cri.PodUID(s.Labels)
		parts[uid] = append(parts[uid], "s"+s.Id+s.State.String())
	}
	for _, c := range ctrs {
		uid := cri.PodUID(c.Labels)
		parts[uid] = append(parts[uid], "c"+c.Id+c.State.String())
	}
	now := make(map[types.UID]string, len(parts))
	for uid, ps := range parts {
		sort.Strings(ps)
		now[uid] = strings.Join(ps, ",")
		if p.last[uid] != now[uid] {
			p.wake(uid)
		}
	}
	for uid := range p.last {
		if _, ok := now[uid]; !ok {
			p.wake(uid)
		}
	}
	p.last = now
}
