//go:build !linux

package volumes

func defaultMounter() Mounter { return nil }
