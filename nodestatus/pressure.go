package nodestatus

import (
	v1 "k8s.io/api/core/v1"
)

// pressureConditions are MemoryPressure, DiskPressure and PIDPressure as
// the eviction manager has them (Config.UnderPressure), as the kubelet's
// MemoryPressureCondition, DiskPressureCondition and PIDPressureCondition
// setters: True while it says so, False otherwise, and False when there
// is no eviction manager or it has not checked yet.
func (c *Controller) pressureConditions() []v1.NodeCondition {
	under := func(typ v1.NodeConditionType) bool {
		return c.cfg.UnderPressure != nil && c.cfg.UnderPressure(typ)
	}
	return []v1.NodeCondition{
		pressureCondition(v1.NodeMemoryPressure, under(v1.NodeMemoryPressure),
			"KubeletHasSufficientMemory", "nodeagent has sufficient memory available",
			"KubeletHasInsufficientMemory", "nodeagent has insufficient memory available"),
		pressureCondition(v1.NodeDiskPressure, under(v1.NodeDiskPressure),
			"KubeletHasNoDiskPressure", "nodeagent has no disk pressure",
			"KubeletHasDiskPressure", "nodeagent has disk pressure"),
		pressureCondition(v1.NodePIDPressure, under(v1.NodePIDPressure),
			"KubeletHasSufficientPID", "nodeagent has sufficient PID available",
			"KubeletHasInsufficientPID", "nodeagent has insufficient PID available"),
	}
}

// pressureCondition builds a pressure condition: True under pressure,
// else False.
func pressureCondition(typ v1.NodeConditionType, pressure bool, okReason, okMsg, badReason, badMsg string) v1.NodeCondition {
	if pressure {
		return v1.NodeCondition{Type: typ, Status: v1.ConditionTrue, Reason: badReason, Message: badMsg}
	}
	return v1.NodeCondition{Type: typ, Status: v1.ConditionFalse, Reason: okReason, Message: okMsg}
}
