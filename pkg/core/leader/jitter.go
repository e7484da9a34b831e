package leader

import (
	"math/rand/v2"
	"time"
)

// Jittered is d plus up to factor of d, at random: [d, d*(1+factor)). Every
// backend waits this long between two campaign attempts (RetryPeriod,
// JitterFactor), so that candidates started together do not poll in step.
func Jittered(d time.Duration, factor float64) time.Duration {
	return d + time.Duration(rand.Float64()*factor*float64(d))
}
