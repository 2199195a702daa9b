pub mod cat;
pub mod extract;
pub mod inspect;
pub mod ls;
pub mod pack;
