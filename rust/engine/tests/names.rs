//! The lists of names the engine's errors quote (and the Python layer offers) are the names it
//! accepts, each naming itself back.

use rnnstab_engine::{Activation, Clip, Loss, NonFinitePolicy, OptimizerKind, CLIP_NAMES};

fn names(list: &str) -> Vec<&str> {
    list.split(", ").collect()
}

#[test]
fn every_listed_name_is_accepted_and_names_itself() {
    for name in names(Activation::CHOICES) {
        let act = Activation::parse(name).expect("a listed activation");
        assert_eq!(act.name(), name);
        assert!(act.gamma() > 0.0 && act.gamma() <= 1.0);
    }
    for name in names(Loss::CHOICES) {
        Loss::parse(name).expect("a listed loss");
    }
    for name in names(OptimizerKind::CHOICES) {
        OptimizerKind::parse(name).expect("a listed optimiser");
    }
    for name in names(NonFinitePolicy::CHOICES) {
        NonFinitePolicy::parse(name).expect("a listed non-finite policy");
    }
    for name in names(CLIP_NAMES) {
        assert_eq!(Clip::parse(name, 1.0).expect("a listed rule").name(), name);
    }
    assert!(Activation::parse("softplus").is_err());
}
