"""What a person sees: terminal summaries (`terminal`), progress bars (`progress`), the review page
(`review`) and the review app that stores a reviewer's labels (`reviewapp`), the HTML report (`htmlreport`)
and spreadsheets both ways (`spreadsheets`).

Views read what the library computed and stored; they compute no business figures of their own.
May import every room below it; only the CLI imports views.
"""
