//! Customer lifetime value by model: the BG/NBD model (Fader, Hardie & Lee 2005) of
//! purchases and P(alive), and the Gamma-Gamma model of spend per purchase, fitted by
//! maximum likelihood on a calibration summary (DESIGN.md "Customer lifetime value").
