package intune

import "github.com/scepca/scepca/store"

// CheckConfig reports whether an INTUNE integration's configuration loads:
// tenant, client ID, URLs and the sealed client secret (opened, never
// returned). It calls nothing over the network; the readiness probe uses it.
func (v *Validator) CheckConfig(in *store.Integration) error {
	_, err := v.settings(in)
	return err
}
