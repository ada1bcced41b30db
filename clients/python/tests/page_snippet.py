"""The product page's Python snippet as written; only the key and base URL come from the environment."""

import os

from prism import Prism

client = Prism(api_key=os.environ["PRISM_DEFAULT_KEY"], base_url=os.environ["PRISM_DEFAULT_BASE_URL"])
stream = client.chat.completions.create(model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Write a short poem"}], stream=True)
for chunk in stream:
    if chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)

with client.chat.completions.stream(model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Explain quantum computing"}]) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
# Access full completion after streaming
completion = stream.get_final_completion()
print(f"\nTotal tokens: {completion.usage.total_tokens}")
