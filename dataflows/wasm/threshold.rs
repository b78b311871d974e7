// The threshold of wasm/threshold.c, written in Rust: the same guest ABI (include/apus_wasm.h),
// the same masks. Debian's rustc with libstd-rust-dev-wasm32 builds it, no cargo needed (a rustup
// rustc needs `rustup target add wasm32-unknown-unknown` first):
//
//     /usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib -O -o wasm/build/threshold.wasm wasm/threshold.rs
//
// and with that as the threshold's `build:` line, wasm-filters.yml runs it in place of the C one.
#![no_std]

use core::arch::wasm32;

#[link(wasm_import_module = "apus")]
extern "C" {
    fn send_forward(output: *const u8, output_length: u32, data: *const u8, length: u32) -> i32;
}

const CONTINUE: i32 = 0;
const ERROR: i32 = 3;
const PAGE: usize = 65536;

extern "C" {
    static __heap_base: u8;
}

/// The input buffer: from the heap's start, grown to the largest input so far.
static mut CAPACITY: usize = 0;

#[no_mangle]
pub extern "C" fn apus_alloc(size: u32) -> *mut u8 {
    unsafe {
        let start = core::ptr::addr_of!(__heap_base) as usize;
        let end = start + size as usize;
        let have = wasm32::memory_size(0) * PAGE;
        if size as usize > CAPACITY && end > have && wasm32::memory_grow(0, (end - have + PAGE - 1) / PAGE) == usize::MAX {
            return core::ptr::null_mut();
        }
        CAPACITY = CAPACITY.max(size as usize);
        start as *mut u8
    }
}

#[no_mangle]
pub extern "C" fn apus_on_event(data: *mut u8, length: u32) -> i32 {
    let pixels = unsafe { core::slice::from_raw_parts_mut(data, length as usize) };
    for pixel in pixels.iter_mut() {
        *pixel = if *pixel > 128 { 255 } else { 0 };
    }
    let output = b"mask";
    match unsafe { send_forward(output.as_ptr(), output.len() as u32, data, length) } {
        0 => CONTINUE,
        _ => ERROR,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    wasm32::unreachable()
}
