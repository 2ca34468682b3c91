package site

// maxTxnOps is how many writes one transaction carries: etcd refuses more
// than 128 operations in a transaction by default.
const maxTxnOps = 100

// inBatches calls commit for consecutive ranges [start, end) of n items, at
// most maxTxnOps each, in order, and stops at the first error. It returns
// how many items the ranges before the failed one held (their transactions
// were committed; the failed one's may have been too, unknown to the
// caller), or n when none failed.
func inBatches(n int, commit func(start, end int) error) (committed int, err error) {
	for start := 0; start < n; start += maxTxnOps {
		end := min(start+maxTxnOps, n)
		if err := commit(start, end); err != nil {
			return start, err
		}
	}
	return n, nil
}
