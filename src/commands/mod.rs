pub mod cat;
pub mod extract;
pub mod inspect;
pub mod ls;
pub mod merge;
pub mod pack;
pub mod store;
