/* The benchmark's work, the same for the C and the Wasm operator: a byte-wise transform. */
static inline void transform(unsigned char *out, const unsigned char *in, unsigned long length)
{
    for (unsigned long i = 0; i < length; i++)
        out[i] = (unsigned char)((in[i] ^ 0x5a) + 1);
}
