pragma circom 2.1.0;

// Binding bn128-poseidon8-v1 (`billing_binding` in circuits/circuits.json): its main component,
// what `make setup` compiles. The templates are shared, in circuits/.
include "../billing_binding.circom";

component main = BillingBinding();
