package redisstore

import (
	"testing"

	"actorim/persistence/storetest"
)

func TestHookQueueRedis(t *testing.T) {
	storetest.HookQueue(t, func(t *testing.T) storetest.HookStore {
		return openStore(t, shared.addr(), Options{})
	})
}

func TestHookDurabilityRedis(t *testing.T) {
	prefix := newPrefix()
	storetest.HookDurability(t, func(t *testing.T) storetest.HookStore {
		return openStore(t, shared.addr(), Options{Prefix: prefix})
	})
}
